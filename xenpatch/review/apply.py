"""Apply a series under review: choose its base, ``git am --3way`` each patch in a scratch clone.

The user's repository is only read: a ``git clone --shared --no-checkout``
in a temporary directory receives the patches, with a sparse checkout of
just the files they touch, no hooks, and none of the user's or system's
git config or attributes (``gitrepo.UNTRUSTED_CONFIG``), so nothing from a
patch or the tree is executed.  A patch that does not apply stops the
series there (the later ones were written on top of it): it becomes an
``apply-failed`` finding, and what applied before it is still reviewed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import gitrepo
from ..errors import EnvironmentFailure, InputError
from .finding import Finding
from .hunks import files_touched, parse_diff
from .locate import PUBLIC, Locator
from .series import Patch, Series

# Who commits in the scratch clone (the author comes from each mail, as git am does).
REVIEW_IDENTITY = ("xenpatch review", "review@xenpatch.invalid", "2000-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class Base:
    sha: str
    rev: str  # as given or found
    how: str  # "--base" | "base-commit" | "[tree].base"
    reason: str  # one sentence for the report


@dataclass(frozen=True)
class Applied:
    base: Base
    commits: tuple[tuple[int, str], ...]  # (patch number, commit) of each patch that applied
    result: str  # the last applied commit (the base when none did)
    findings: tuple[Finding, ...]  # apply-failed, and the patches not tried after it
    locator: Locator

    @property
    def applied(self) -> tuple[int, ...]:
        return tuple(n for n, _ in self.commits)


def choose_base(repo: gitrepo.git.Repo, given: str | None, series: Series, configured: str) -> Base:
    """``--base REV``, else the series' ``base-commit:`` (tags peeled) when the tree has it,
    else ``[tree].base``; InputError for a revision given or configured that is unknown."""
    where = str(repo.working_tree_dir or repo.git_dir)
    if given:
        try:
            sha = gitrepo.resolve(repo, given).hexsha
        except InputError as e:
            raise InputError(f"--base {given}: not a revision of {where}") from e
        return Base(sha, given, "--base", f"given with --base {given}")
    if series.base_commit:
        try:
            sha = gitrepo.resolve(repo, series.base_commit).hexsha
        except InputError:
            sha = ""
        if sha:
            return Base(sha, series.base_commit, "base-commit",
                        "from the series' base-commit: line")
        fallback = _configured(repo, configured, where)
        return Base(fallback, configured, "[tree].base",
                    f"the series' base-commit: {series.base_commit[:12]} is not in the tree; "
                    f"[tree].base {configured} instead")
    return Base(_configured(repo, configured, where), configured, "[tree].base",
                f"no --base and no base-commit: in the series; [tree].base {configured}")


def _configured(repo: gitrepo.git.Repo, rev: str, where: str) -> str:
    try:
        return gitrepo.resolve(repo, rev).hexsha
    except InputError as e:
        raise InputError(f"[tree].base {rev}: not a revision of {where}") from e


def _paths(patches: Sequence[Patch]) -> list[str]:
    out: list[str] = []
    for p in patches:
        for path in (*p.files, *files_touched(parse_diff(p.diff))):
            if path not in out:
                out.append(path)
    return out


_PATCH_FAILED = re.compile(r"patch failed: (\S+?):(\d+)")
_ERROR_PATH = re.compile(r"^error: (\S+?): (.+)$")
_CONFLICT = re.compile(r"^CONFLICT \([^)]*\): .*? in (\S+)$")


def failure_reason(output: str) -> tuple[str | None, int | None, str]:
    """(file, line, git's one-line reason) from ``git am --3way``'s output (stdout and
    stderr: the 3-way merge prints its CONFLICT lines on stdout)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    path: str | None = None
    line: int | None = None
    reason = ""
    for ln in lines:
        if (m := _PATCH_FAILED.search(ln)) is not None and path is None:
            path, line = m.group(1), int(m.group(2))
    for ln in lines:
        if (m := _CONFLICT.match(ln)) is not None:
            return path or m.group(1), line, ln
    for ln in lines:
        if (m := _ERROR_PATH.match(ln)) is not None and not ln.startswith("error: patch failed"):
            path = path or m.group(1)
            reason = f"{m.group(1)}: {m.group(2)}"
            break
    if not reason:
        reason = next((ln for ln in lines if ln.startswith(("error:", "fatal:"))),
                      lines[0] if lines else "git am failed")
    return path, line, reason.removeprefix("error: ").removeprefix("fatal: ")


def _first_change(patch: Patch, path: str) -> int | None:
    """The first line PATCH changes in PATH, as its hunk numbers it (where it did not apply)."""
    for d in parse_diff(patch.diff):
        if d.path == path:
            for hunk in d.hunks:
                for ln in hunk.lines:
                    if ln.kind == "+":
                        return ln.new
    return None


def apply_series(source: gitrepo.git.Repo, base: Base, series: Series, scratch: Path) -> tuple[
        Applied, gitrepo.git.Repo]:
    """Apply SERIES onto BASE in a scratch clone of SOURCE made under SCRATCH."""
    clone = gitrepo.review_clone(source, scratch / "repo")
    paths = _paths(series.patches) or [PUBLIC + "xen.h"]
    status, _, err = gitrepo.untrusted_git(clone, "sparse-checkout", "set", "--no-cone",
                                           *[f"/{p}" for p in paths])
    if status == 0:
        status, _, err = gitrepo.untrusted_git(clone, "checkout", "-q", "--detach", base.sha)
    if status != 0:
        raise EnvironmentFailure(f"git checkout in the scratch clone: "
                                         f"{(err.strip().splitlines() or ['failed'])[-1]}")
    name, email, date = REVIEW_IDENTITY
    env = {"GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date}
    commits: list[tuple[int, str]] = []
    findings: list[Finding] = []
    for i, patch in enumerate(series.patches):
        mail = scratch / f"patch-{patch.number:04d}.mbox"
        mail.write_bytes(patch.mail.raw)
        status, out, err = gitrepo.untrusted_git(clone, "am", "--3way", "--no-gpg-sign",
                                                 str(mail), env=env)
        if status != 0:
            gitrepo.untrusted_git(clone, "am", "--abort")
            path, line, reason = failure_reason(out + "\n" + err)
            if path is not None and line is None:
                line = _first_change(patch, path)
            findings.append(Finding("apply-failed", "error", patch.number, path, line,
                                    f"patch {patch.number}/{series.total} does not apply onto "
                                    f"{base.sha[:12]}: {reason}"))
            for later in series.patches[i + 1:]:
                findings.append(Finding("apply-failed", "error", later.number, None, None,
                                        f"not applied: it comes after patch {patch.number}, "
                                        "which does not apply"))
            break
        commits.append((patch.number, clone.head.commit.hexsha))
    result = commits[-1][1] if commits else base.sha
    locator = build_locator(clone, base.sha, result, commits, series.patches)
    return Applied(base, tuple(commits), result, tuple(findings), locator), clone


def build_locator(repo: gitrepo.git.Repo, base: str, result: str,
                  commits: Sequence[tuple[int, str]], patches: Sequence[Patch]) -> Locator:
    """Blame every public header the applied patches touch (BASE..RESULT)."""
    number_of = {sha: n for n, sha in commits}
    applied = {n for n, _ in commits}
    first: dict[str, int] = {}
    for p in patches:
        if p.number in applied:
            for path in _paths([p]):
                first.setdefault(path, p.number)
    added: dict[str, dict[int, tuple[int, int]]] = {}
    lines: dict[str, tuple[str, ...]] = {}
    removed: dict[str, list[tuple[int, int, str]]] = {}
    for p in patches:
        if p.number in applied:
            for d in parse_diff(p.diff):
                for hunk in d.hunks:
                    at = hunk.new_start
                    for ln in hunk.lines:
                        if ln.new is not None:
                            at = ln.new
                        elif d.path.startswith(PUBLIC):
                            removed.setdefault(d.path, []).append((p.number, at, ln.text))
    for path in first:
        if not path.startswith(PUBLIC) or result == base:
            continue
        data = gitrepo.read_file(repo, result, path)
        if data is None:
            continue
        lines[path] = tuple(data.decode("utf-8", "replace").split("\n"))
        origins = gitrepo.blame_origins(repo, f"{base}..{result}", path)
        added[path] = {i + 1: (number_of[sha], orig) for i, (sha, orig) in enumerate(origins)
                       if sha in number_of}
    return Locator(added, first, lines, {k: tuple(v) for k, v in removed.items()})
