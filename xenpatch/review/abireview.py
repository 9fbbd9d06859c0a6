"""The ABI review that watch and send's pre-flight run on a series: apply it, diff and check its ABI.

This is the adapter the brief allows until ``review_series`` (issue 7,
``review/command.py``) can be called as a library: it applies the series'
diffs onto the base in a private index of a scratch clone (``git apply
--cached``: no work tree, no hooks, nothing from the patch runs; the user's
repository is only read), dumps the public headers' ABI of base and result
(the same engine and cache as ``abi dump``), and reports what the series
introduces, as the 0-day bot does: an ``abi check`` finding counts only when
the base does not have it already; every breaking ``abi diff`` change is an
error.  A series that does not touch ``xen/include/public/`` costs one
``git apply`` and no ABI work.

Failures of the environment (git, cpp) are raised as EnvironmentFailure and
never turned into findings against the patch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import gitrepo
from ..abi import check as abicheck
from ..abi.diff import Change, diff_models
from ..abi.model import AbiModel
from ..abi.sources import PUBLIC, HeaderSource
from ..config import Config
from ..errors import InputError

# abi diff change kinds -> review rule (DESIGN.md rule names)
RULE_OF_CHANGE = {
    "macro-removed": "abi-removed", "type-removed": "abi-removed",
    "enumerator-removed": "abi-removed", "field-removed": "abi-layout-change",
    "macro-value-changed": "abi-value-change", "enumerator-value-changed": "abi-value-change",
    "type-size-changed": "abi-layout-change", "type-align-changed": "abi-layout-change",
    "field-offset-changed": "abi-layout-change", "field-type-changed": "abi-layout-change",
    "field-added": "abi-layout-change", "interface-version": "interface-version",
}


@dataclass(frozen=True)
class ReviewFinding:
    """One finding (DESIGN.md ``xenpatch-review/1``): PATCH is 1-based, or None for the series."""

    rule: str
    severity: str  # error | warning | info
    patch: int | None
    file: str | None
    line: int | None
    message: str

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule, "severity": self.severity, "patch": self.patch,
                "file": self.file, "line": self.line, "message": self.message}


@dataclass(frozen=True)
class PatchInput:
    """What the review needs of one patch: its number, subject, diff and the files it touches."""

    number: int
    subject: str
    diff: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class ReviewResult:
    base: str  # the commit the series was applied to
    base_how: str  # "--base", "base-commit: trailer", "[tree].base"
    findings: tuple[ReviewFinding, ...]
    changes: tuple[Change, ...] = ()
    base_model: AbiModel | None = field(default=None, compare=False, repr=False)
    result_model: AbiModel | None = field(default=None, compare=False, repr=False)

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


def choose_base(tree: Path, explicit: str | None, trailer: str | None,
                configured: str) -> tuple[str, str]:
    """(commit, how it was chosen): ``--base``, else a ``base-commit:`` the tree has, else
    ``[tree].base``."""
    repo = gitrepo.open_repo(tree)
    if explicit:
        return gitrepo.resolve(repo, explicit).hexsha, "--base"
    if trailer:
        try:
            return gitrepo.resolve(repo, trailer).hexsha, "base-commit: trailer"
        except InputError:
            pass  # a base the tree does not have: fall back, and say so in `how`
    return gitrepo.resolve(repo, configured).hexsha, "[tree].base" + (
        f" (base-commit {trailer[:12]} is not in the tree)" if trailer else "")


def review_patches(patches: Sequence[PatchInput], tree: Path, base: tuple[str, str],
                   config: Config) -> ReviewResult:
    """Apply PATCHES onto BASE (commit, how) of TREE and review the ABI they change."""
    sha, how = base
    repo = gitrepo.open_repo(tree)
    touches_abi = any(f.startswith(PUBLIC + "/") for p in patches for f in p.files)
    with tempfile.TemporaryDirectory(prefix="xenpatch-review-") as tmp:
        work = Path(tmp)
        scratch = gitrepo.scratch_clone(repo, work / "scratch.git")
        ident = gitrepo.ident_env("xenpatch review", "review@xenpatch.invalid", "@0 +0000")
        try:
            result = gitrepo.apply_diffs(scratch, sha, [p.diff.encode() for p in patches],
                                         work, ident)
        except gitrepo.PatchDoesNotApply as e:
            p = patches[e.number - 1]
            return ReviewResult(sha, how, (ReviewFinding(
                "apply-failed", "error", p.number, p.files[0] if p.files else None, None,
                f"patch {p.number} does not apply to {sha[:12]}: {e}"),))
        if not touches_abi:
            return ReviewResult(sha, how, ())
        old = _dump(_source(repo, sha, f"{tree}@{sha[:12]}"), config)
        new = _dump(_source(scratch, result, f"{tree}@{sha[:12]}+series"), config)
    return ReviewResult(sha, how, _abi_findings(old, new, patches, config), diff_models(old, new),
                        old, new)


def _source(repo: object, sha: str, what: str) -> HeaderSource:
    files = gitrepo.read_files(repo, sha, PUBLIC, (".h",))  # type: ignore[arg-type]
    return HeaderSource(what, sha, files)


def _dump(source: HeaderSource, config: Config) -> AbiModel:
    from ..abi import api
    cache = config.get("abi", "cache")
    return api.dump(source, tuple(config.get("abi", "arches")), config.get("abi", "profile"),
                    cpp=config.get("abi", "cpp"),
                    cache_dir=config.resolve_path(cache) if cache else None,
                    jobs=config.get("abi", "jobs"))


def patch_of(header: str, patches: Sequence[PatchInput]) -> int | None:
    path = f"{PUBLIC}/{header}"
    return next((p.number for p in reversed(patches) if path in p.files), None)


def _abi_findings(old: AbiModel, new: AbiModel, patches: Sequence[PatchInput],
                  config: Config) -> tuple[ReviewFinding, ...]:
    before = {(f.rule, f.name) for f in abicheck.check_model(old, config.suppress)}
    out: list[ReviewFinding] = []
    for f in abicheck.check_model(new, config.suppress):
        if (f.rule, f.name) in before:
            continue  # the base has it already: not the series' fault
        out.append(ReviewFinding(f.rule, f.severity, patch_of(f.header, patches),
                                 f"{PUBLIC}/{f.header}", f.line,
                                 f"{f.message} [{', '.join(f.arches)}]"))
    for ch in diff_models(old, new):
        rule = RULE_OF_CHANGE.get(ch.kind)
        if rule is None or ch.severity != "breaking":
            continue
        what = f"{ch.name}.{ch.field}" if ch.field else ch.name
        out.append(ReviewFinding(rule, "error", patch_of(ch.header, patches),
                                 f"{PUBLIC}/{ch.header}", ch.line or None,
                                 f"{ch.kind}: {what} {ch.old!r} -> {ch.new!r} "
                                 f"[{', '.join(ch.arches)}]"))
    return tuple(out)
