"""The self-checks a generated series must pass before anything is written.

(a) ``git-am``: the patch files apply with ``git am`` onto the base in a
scratch clone and give exactly the generated tree; (b) ``abi-check``: no
error-level finding of ``abi check`` that the base did not have; (c)
``abi-diff``: base and result differ only by the new macro (and the
``*_MAX`` marker moved to it), on every arch; (d) ``header-compile``: the
touched public headers pass Xen's ``headers.chk``/``headers99.chk``/
``headers++.chk``; (e) ``columns``: every added line within Xen's limit for
its file and every message line within 75; (f) ``meaning``: the change's
meaning sentence, in substance, in the header comment, the docs, xl.cfg(5)
and the first patch's message; (g) ``build`` (``--build-check``):
libxenguest, libxl and xl compile, and the rendered validation takes its
error paths (buildcheck.py).  The judging functions are pure;
``series.py`` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..abi.diff import Change
from ..abi.headercheck import HeaderResult
from ..abi.model import AbiModel
from .spec import ChangeSpec


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


# Xen's limits.  CODING_STYLE: "Lines should be less than 80 characters in
# length" (the hypervisor, the public headers and the tools alike; the docs
# wrap the same way).  docs/process/sending-patches.pandoc: commit message
# lines of at most 75 characters.  Files that Xen's own generators write are
# exempt: gengotypes.py emits unwrapped Go.
CODE_MAX = 79
MESSAGE_MAX = 75
GENERATED = re.compile(r"^tools/golang/xenlight/\w+\.gen\.go$")
_DIFFSTAT = re.compile(r"^( \S.* \| +(\d+ [+-]*|Bin .*)| \d+ files? changed.*)$")
_TRAILER = re.compile(r"^[A-Z][A-Za-z-]+: .*(<[^>]+@[^>]+>|https?://\S+)")


def _limit(path: str) -> int | None:
    return None if GENERATED.match(path) else CODE_MAX


def column_findings(name: str, text: str) -> list[str]:
    """Lines of the patch file NAME over Xen's limits: its message (up to the diffstat)
    and, after it, each added line against its file's limit."""
    bad: list[str] = []
    head, _, rest = text.partition("\n\n")
    message, sep, diff = rest.partition("\ndiff --git ")
    shortlog = re.compile(r"^\S.* \(\d+\):$")
    for n, line in enumerate(message.splitlines(), head.count("\n") + 3):
        if name.startswith("0000-") and shortlog.match(line):
            break  # the cover letter's shortlog and diffstat are git's
        if line == "-- " or _DIFFSTAT.match(line) or _TRAILER.match(line):
            continue
        if len(line) > MESSAGE_MAX:
            bad.append(f"{name}:{n}: message line of {len(line)} columns (at most "
                       f"{MESSAGE_MAX}): {line[:40]}...")
    path = None
    offset = text.count("\n", 0, len(head) + 2 + len(message) + len(sep)) + 1
    for n, line in enumerate(("diff --git " + diff if sep else "").splitlines(), offset):
        if line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else None
        elif line.startswith("+") and path is not None:
            limit = _limit(path)
            width = len(line[1:].expandtabs(8))
            if limit is not None and width > limit:
                bad.append(f"{name}:{n}: {path}: added line of {width} columns (at most "
                           f"{limit}): {line[1:41].strip()}...")
    return bad


def judge_columns(files: Sequence[tuple[str, str]]) -> CheckResult:
    """Every added line within its file's limit and every message line within 75."""
    bad = [b for name, text in files for b in column_findings(name, text)]
    if bad:
        return CheckResult("columns", False, f"{len(bad)} line(s) over Xen's limits", tuple(bad))
    return CheckResult("columns", True, f"added lines <= {CODE_MAX} columns, messages <= "
                       f"{MESSAGE_MAX} (generated Go exempt)")


def normalize(text: str) -> str:
    """TEXT as words only: comment marks, pod and markdown markup, '+' of diff lines and
    line breaks gone, lower case (what "unaltered in substance" compares)."""
    text = re.sub(r"(?m)^\+", "", text)
    text = re.sub(r"(?m)/\*|\*/|^\s*\*(?=\s)", " ", text)
    text = re.sub(r"[BCIL]<([^<>]*)>", r"\1", text)
    text = text.replace("`", "")
    return " ".join(text.split()).lower()


def added_text(text: str, path: str) -> str:
    """The lines a patch file adds to PATH, joined."""
    out, current = [], None
    _, sep, diff = text.partition("\ndiff --git ")
    for line in diff.splitlines() if sep else []:
        if line.startswith("+++ "):
            current = line[6:]
        elif line.startswith("+") and current == path:
            out.append(line[1:])
    return "\n".join(out)


def judge_meaning(spec: ChangeSpec, header: str,
                  patches: Sequence[tuple[str, str]]) -> CheckResult | None:
    """The meaning sentence in the header comment, the docs, xl.cfg(5) and the message of
    the patch adding the define; None for a change without a meaning."""
    if spec.meaning is None:
        return None
    want = normalize(spec.meaning)
    places: list[tuple[str, str]] = []
    for (name, text), patch in zip(patches, spec.patches, strict=False):
        if "define" in patch.parts:
            places.append((f"{header} (comment)", added_text(text, header)))
            places.append((f"{name} (message)", text.split("\n---\n", 1)[0]))
        if "docs" in patch.parts and spec.docs is not None:
            places.append((spec.docs.file, added_text(text, spec.docs.file)))
        if "libxl" in patch.parts:
            places.append((XL_CFG, added_text(text, XL_CFG)))
    missing = [where for where, text in places if want not in normalize(text)]
    if missing:
        return CheckResult("meaning", False, f"the meaning is not stated in {len(missing)} "
                           "place(s)", tuple(f"{w}: does not say {spec.meaning!r}"
                                             for w in missing))
    return CheckResult("meaning", True, f"the meaning is stated in {len(places)} places",
                       tuple(w for w, _ in places))


XL_CFG = "docs/man/xl.cfg.5.pod.in"
