"""The self-checks a generated series must pass before anything is written.

(a) ``git-am``: the patch files apply with ``git am`` onto the base in a
scratch clone and give exactly the generated tree; (b) ``abi-check``: no
error-level finding of ``abi check`` that the base did not have; (c)
``abi-diff``: base and result differ only by the new macro (and the
``*_MAX`` marker moved to it), on every arch; (d) ``header-compile``: the
touched public headers pass Xen's ``headers.chk``/``headers99.chk``/
``headers++.chk``; (e) ``build`` (``--build-check``): libxenguest, libxl and
xl compile.  The judging functions are pure; ``series.py`` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..abi.diff import Change
from ..abi.headercheck import HeaderResult
from ..abi.model import AbiModel


@dataclass(frozen=True)
class CheckResult:
    name: str  # git-am | abi-check | abi-diff | header-compile | build
    ok: bool
    summary: str  # one line
    details: tuple[str, ...] = ()  # one line each: what went wrong, or what was checked


def judge_am(result_tree: str | None, expected_tree: str, error: str = "") -> CheckResult:
    if result_tree is None:
        return CheckResult("git-am", False, f"the series does not apply: {error}")
    if result_tree != expected_tree:
        return CheckResult("git-am", False,
                           f"git am gives tree {result_tree[:12]}, expected {expected_tree[:12]}")
    return CheckResult("git-am", True, "applies with git am onto the base")


def new_findings(base: Sequence, result: Sequence, severities: Sequence[str] = ("error",)) -> list:
    """Findings of ``abi check`` on RESULT at SEVERITIES that BASE does not have (compared by
    rule and name: lines move).  Also what ``review`` reports of ``abi check``."""
    known = {(f.rule, f.name) for f in base if f.severity in severities}
    return [f for f in result if f.severity in severities and (f.rule, f.name) not in known]


def judge_findings(base: Sequence, result: Sequence) -> CheckResult:
    """New error-level findings of ``abi check`` (by rule and name; lines move)."""
    new = new_findings(base, result)
    if new:
        return CheckResult("abi-check", False, f"{len(new)} new error(s)",
                           tuple(f"{f.header}:{f.line}: {f.rule}: {f.message}" for f in new))
    return CheckResult("abi-check", True, "no new error-level finding")


def newly_failed(base: AbiModel, result: AbiModel) -> list[str]:
    """Headers that parse in BASE but not in RESULT, one line each with the arches."""
    failed: dict[tuple[str, str], list[str]] = {}
    for arch in result.arches:
        before = {f.header for f in base.arch_map[arch.arch].failed} \
            if arch.arch in base.arch_map else set()
        for f in arch.failed:
            if f.header not in before:
                failed.setdefault((f.header, f.error), []).append(arch.arch)
    return [f"{header}: no longer parses: {error} [{','.join(arches)}]"
            for (header, error), arches in sorted(failed.items())]


def judge_diff(changes: Sequence[Change], added: dict[str, int], moved: Sequence[str],
               model: AbiModel, base: AbiModel | None = None) -> CheckResult:
    """Only ADDED macros (name -> value) added, on every arch of MODEL; only MOVED markers
    changed value; no header of BASE stopped parsing; nothing else."""
    arches = tuple(a.arch for a in model.arches)
    bad: list[str] = newly_failed(base, model) if base is not None else []
    seen: dict[str, set[str]] = {n: set() for n in added}
    for ch in changes:
        if ch.kind == "macro-added" and ch.name in added:
            if ch.new != added[ch.name]:
                bad.append(f"{ch.name} = {ch.new} on {','.join(ch.arches)}, "
                           f"expected {added[ch.name]}")
            seen[ch.name].update(ch.arches)
        elif ch.kind == "macro-value-changed" and ch.name in moved:
            continue
        else:
            where = f"{ch.name}.{ch.field}" if ch.field else ch.name
            bad.append(f"{ch.header}:{ch.line}: {ch.kind}: {where}: {ch.old} -> {ch.new} "
                       f"[{','.join(ch.arches)}]")
    for name, got in seen.items():
        missing = [a for a in arches if a not in got]
        if missing:
            bad.append(f"{name} is not defined on {','.join(missing)}")
    if bad:
        return CheckResult("abi-diff", False, f"{len(bad)} unexpected ABI change(s)", tuple(bad))
    names = ", ".join(sorted(added))
    return CheckResult("abi-diff", True,
                       f"only {names} added on {','.join(arches)}; no type, field, enumerator "
                       "or other macro changed")


def judge_headers(results: Sequence[HeaderResult]) -> CheckResult:
    bad = [r for r in results if not r.ok]
    if bad:
        return CheckResult("header-compile", False, f"{len(bad)} header check(s) failed",
                           tuple(f"{r.check}: {r.header}: {r.error}" for r in bad))
    done = ", ".join(f"{r.check} {r.header}" for r in results)
    return CheckResult("header-compile", True, f"{len(results)} header check(s) pass",
                       (done,) if done else ())
