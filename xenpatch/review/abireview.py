"""The ABI diff a series makes (base -> result), for the watch bot's cross-series claims.

``review.engine`` computes the ABI diff inside its review but hands back only
findings; the claims need the changes and the result's model.  This applies
the series' diffs onto the base in a private index of a scratch clone (``git
apply --cached``: no work tree, no hooks, nothing from the patch runs; the
user's repository is only read) and dumps both snapshots with the ABI engine.
The dumps hit the cache the review just filled (the cache is keyed by the
headers' content), so this costs about one ``git apply`` and two cache reads.
Failures of git or cpp are raised as EnvironmentFailure, never findings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import gitrepo
from ..abi.diff import Change, diff_models
from ..abi.model import AbiModel
from ..abi.sources import PUBLIC, HeaderSource
from ..config import Config


@dataclass(frozen=True)
class PatchInput:
    """What the diff needs of one patch: its number, its diff and the files it touches."""

    number: int
    diff: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class AbiDiff:
    base: AbiModel
    result: AbiModel
    changes: tuple[Change, ...]


def patch_of(header: str, patches: Sequence[PatchInput]) -> int | None:
    """The last patch touching public HEADER (the one whose lines the result shows)."""
    path = f"{PUBLIC}/{header}"
    return next((p.number for p in reversed(patches) if path in p.files), None)


def abi_diff(patches: Sequence[PatchInput], tree: Path, base: str,
             config: Config) -> AbiDiff | None:
    """The ABI change of PATCHES on BASE of TREE; None when they touch no public header or
    do not apply (the review reports that)."""
    if not any(f.startswith(PUBLIC + "/") for p in patches for f in p.files):
        return None
    repo = gitrepo.open_repo(tree)
    with tempfile.TemporaryDirectory(prefix="xenpatch-claims-") as tmp:
        work = Path(tmp)
        scratch = gitrepo.scratch_clone(repo, work / "scratch.git")
        ident = gitrepo.ident_env("xenpatch watch", "watch@xenpatch.invalid", "@0 +0000")
        try:
            result = gitrepo.apply_diffs(scratch, base, [p.diff.encode() for p in patches],
                                         work, ident)
        except gitrepo.PatchDoesNotApply:
            return None
        old = _dump(_source(repo, base, f"{tree}@{base[:12]}"), config)
        new = _dump(_source(scratch, result, f"{tree}@{base[:12]}+series"), config)
    return AbiDiff(old, new, diff_models(old, new))


def _source(repo: object, sha: str, what: str) -> HeaderSource:
    files = gitrepo.read_files(repo, sha, PUBLIC, (".h",))  # type: ignore[arg-type]
    return HeaderSource(what, sha, files)


def _dump(source: HeaderSource, config: Config) -> AbiModel:
    from ..abi import api

    return api.dump_configured(source, config)
