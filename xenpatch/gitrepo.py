"""The one module that talks to git, through GitPython.

Library code never runs ``git`` by hand; errors from GitPython are re-raised
as xenpatch errors naming the repository and revision.
"""

from __future__ import annotations

from pathlib import Path

from .errors import EnvironmentFailure, InputError

try:
    import git
    from git.exc import BadName, GitCommandError, InvalidGitRepositoryError, NoSuchPathError
except ImportError as e:  # GitPython raises ImportError when the git binary is missing
    raise EnvironmentFailure(f"GitPython cannot be used: {e}") from e


def open_repo(path: str | Path) -> git.Repo:
    """The git repository whose work tree is PATH (not a parent's)."""
    try:
        repo = git.Repo(str(path), search_parent_directories=False)
    except (InvalidGitRepositoryError, NoSuchPathError) as e:
        raise InputError(f"{path}: not a git repository") from e
    return repo


def resolve(repo: git.Repo, rev: str) -> git.Commit:
    """The commit REV names, or InputError naming it."""
    try:
        return repo.commit(rev)
    except (BadName, ValueError, GitCommandError) as e:
        raise InputError(f"{repo.working_tree_dir}: unknown revision {rev!r}") from e


def read_files(repo: git.Repo, rev: str, subdir: str, suffixes: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The blobs under SUBDIR at REV, keyed by path relative to SUBDIR (no checkout)."""
    commit = resolve(repo, rev)
    try:
        tree = commit.tree / subdir
    except KeyError as e:
        raise InputError(f"{repo.working_tree_dir}@{rev}: no {subdir}/") from e
    out: dict[str, bytes] = {}
    for item in tree.traverse():
        if item.type != "blob":
            continue
        rel = item.path[len(subdir) + 1:]
        if suffixes and not rel.endswith(suffixes):
            continue
        out[rel] = item.data_stream.read()
    return out
