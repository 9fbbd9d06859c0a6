"""Rate the changes between two header snapshots of a tree by Xen's interface rules (interfaces.py).

Shared by ``abi diff``/``abi history`` (drift.py) and ``review`` (review/engine.py):
it loads the views the rules ask for and finds the release tag whose interface
versions a snapshot is measured against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .interfaces import Release, Roots, Side, judge, release_base
from .model import AbiModel
from .sources import HeaderSource

if TYPE_CHECKING:
    import git

# (source, profile, roots) -> model: ``api.dump`` with the command's settings (ROOTS:
# its partial models, None for the whole tree).
Loader = Callable[[HeaderSource, str, Roots], AbiModel]
# (source, profile, roots): ``api.start`` of what the Loader will be asked next, or None.
Starter = Callable[[HeaderSource, str, Roots], None]


def side(load: Loader, source: HeaderSource, label: str, tools: AbiModel,
         start: Starter | None = None) -> Side:
    """SOURCE as a Side whose ``tools`` view is TOOLS (already loaded); the others load
    on first use (START: begins a load, ``Side.start``)."""
    def view(profile: str, roots: Roots) -> AbiModel:
        return load(source, profile, roots)

    def begin(profile: str, roots: Roots) -> None:
        assert start is not None
        start(source, profile, roots)
    return Side(view, label, {"tools": tools}, None if start is None else begin)


def release_tag(tree: Path, rev: str, repo: git.Repo | None = None) -> tuple[str, str] | None:
    """(tag, its commit) of the release REV's development cycle counts from, or None
    (REPO: TREE's ``gitrepo.open_repo``, when the caller has it open already)."""
    from .. import gitrepo

    if repo is None:
        repo = gitrepo.open_repo(tree)
    tag = release_base(gitrepo.read_file(repo, rev, "xen/Makefile"),
                       gitrepo.tag_names(repo, "RELEASE-"),
                       lambda: gitrepo.nearest_tag(repo, rev, "RELEASE-*"))
    return None if tag is None else (tag, gitrepo.resolve(repo, tag).hexsha)


def rate(changes: tuple, tree: Path | None, old_src: HeaderSource, new_src: HeaderSource,
         old_tools: AbiModel, new_tools: AbiModel, load: Loader, labels: tuple[str, str],
         found: tuple[str, str] | None, start: Starter | None = None) -> tuple:
    """CHANGES of the tools views OLD -> NEW rated (interface, severity, kind), measured
    against the release FOUND (``release_tag`` in TREE; None, or no TREE: OLD stands for
    it).  START: begins a load of LOAD's, so that the two sides' views are done
    together (``api.start``)."""
    from . import sources

    release = None
    if found is not None and tree is not None:
        # the release is a side of the diff more often than not (RELEASE-x..HEAD, and a
        # release's diff with the one before): its files are read from git once
        same = [s for s in (old_src, new_src) if s.rev == found[1]]
        release = Release(found[0], load(same[0] if same else sources.from_tree(tree, found[1]),
                                         "tools", None))
    return judge(changes, side(load, old_src, labels[0], old_tools, start),
                 side(load, new_src, labels[1], new_tools, start), release)
