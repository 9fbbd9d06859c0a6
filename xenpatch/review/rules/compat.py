"""Rules ``compat-layout``, ``header-compile`` and ``docs-missing``: facts the ABI model alone does not give.

``compat-layout``: a 32-bit x86 guest on a 64-bit Xen passes its own
layout of every hypercall argument; Xen translates or checks the types
listed in ``xen/include/xlat.lst`` ("! - needs translation", "? - needs
checking").  A type the series adds or changes whose x86_32 and x86_64
layouts differ and that has no xlat.lst line is a warning: many such types
never cross the hypercall boundary (save records, tools-only structures
made alike with ``uint64_aligned_t``), so a reviewer judges.

``header-compile``: a touched public header that passed Xen's
``headers.chk``/``headers99.chk``/``headers++.chk`` on the base and fails
on the result (error: the build is broken).

``docs-missing``: a new member of a macro family whose other members are
named in ``docs/`` (where the family is documented) while the series
touches nothing under ``docs/`` (warning).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ...abi.diff import Change
from ...abi.headercheck import HeaderResult
from ...abi.model import AbiModel, TypeInfo
from ..finding import Finding
from ..locate import PUBLIC, Locator

_TYPE_KINDS = ("type-added", "type-size-changed", "type-align-changed", "field-added",
               "field-removed", "field-offset-changed", "field-type-changed")


def xlat_names(text: str) -> set[str]:
    """The type names of xlat.lst lines (``?	start_info	xen.h`` -> ``start_info``)."""
    out = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("!", "?"):
            out.add(parts[1])
    return out


def _bare(name: str) -> str:
    """``struct start_info`` / ``start_info_t`` -> ``start_info`` (xlat.lst's spelling)."""
    name = re.sub(r"^(struct|union|enum) ", "", name)
    return name[:-2] if name.endswith("_t") else name


def _layout(t: TypeInfo) -> tuple:
    return (t.size, tuple((p, f.offset, f.size, f.bit_offset) for p, f in t.walk_fields()))


def divergence(model: AbiModel, name: str) -> frozenset[str] | None:
    """What differs between NAME's x86_32 and x86_64 layouts (``size`` and field paths),
    or None when it is not a record on both."""
    a32, a64 = model.arch_map.get("x86_32"), model.arch_map.get("x86_64")
    t32 = a32.type_map.get(name) if a32 else None
    t64 = a64.type_map.get(name) if a64 else None
    if t32 is None or t64 is None or t32.kind == "enum":
        return None
    f32 = {p: (f.offset, f.size, f.bit_offset) for p, f in t32.walk_fields()}
    f64 = {p: (f.offset, f.size, f.bit_offset) for p, f in t64.walk_fields()}
    out = {p for p in f32.keys() | f64.keys() if f32.get(p) != f64.get(p)}
    return frozenset(out | ({"size"} if t32.size != t64.size else set()))


def compat_findings(changes: Sequence[Change], base: AbiModel, result: AbiModel, xlat: str,
                    locator: Locator) -> list[Finding]:
    """Types added or changed whose x86_32/x86_64 layouts newly differ (a difference the
    base had already is not the series' doing) and that xlat.lst does not list."""
    listed = xlat_names(xlat)
    out: list[Finding] = []
    seen: set[str] = set()
    for ch in changes:
        if ch.kind not in _TYPE_KINDS or ch.name in seen:
            continue
        seen.add(ch.name)
        now = divergence(result, ch.name)
        if not now or _bare(ch.name) in listed:
            continue
        new = now - (divergence(base, ch.name) or frozenset())
        if not new:
            continue
        t32 = result.arch_map["x86_32"].type_map[ch.name]
        t64 = result.arch_map["x86_64"].type_map[ch.name]
        fields = sorted(p for p in new if p != "size")
        what = (f"is {t32.size} bytes on x86_32 and {t64.size} on x86_64"
                if t32.size != t64.size else "has the same size on x86_32 and x86_64")
        moved = f", {', '.join(fields[:3])}{' ...' if len(fields) > 3 else ''} at other offsets" \
            if fields else ""
        patch, path, line = locator.header(t64.header, t64.line, None)
        out.append(Finding(
            "compat-layout", "warning", patch, path, line,
            f"{ch.name} {what}{moved}, and xen/include/xlat.lst has no line for "
            f"{_bare(ch.name)}; if it is a hypercall argument, 32-bit guests need it translated "
            "(!) or checked (?) there, or the layout made the same (uint64_aligned_t, explicit "
            "padding)"))
    return out


def header_findings(base: Sequence[HeaderResult], result: Sequence[HeaderResult],
                    locator: Locator) -> list[Finding]:
    """Checks that fail on RESULT and passed (or did not run) on BASE."""
    failed_before = {(r.check, r.header) for r in base if not r.ok}
    out: list[Finding] = []
    for r in result:
        if r.ok or (r.check, r.header) in failed_before:
            continue
        m = re.match(r"^(?:[^:\s]*?([\w./-]+\.h)):(\d+):", r.error)
        line = int(m.group(2)) if m and m.group(1).endswith(r.header) else 0
        patch, path, at = locator.header(r.header, line) if line else (
            locator.first_patch.get(PUBLIC + r.header), PUBLIC + r.header, None)
        out.append(Finding("header-compile", "error", patch, path, at,
                           f"{r.check} fails (as xen/include/Makefile compiles it): {r.error}"))
    return out


def documented_in(docs: Mapping[str, str], names: Sequence[str]) -> list[str]:
    """The docs/ files that name any of NAMES, as whole words."""
    if not names:
        return []
    word = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
    return sorted(path for path, text in docs.items() if word.search(text))


def docs_findings(changes: Sequence[Change], base: AbiModel, result: AbiModel,
                  docs: Mapping[str, str], touched: Sequence[str], locator: Locator) -> list[Finding]:
    """DOCS: the base tree's docs/ files (path -> text); TOUCHED: every path the series changes."""
    if any(p.startswith("docs/") for p in touched):
        return []
    arch = result.arch_map.get("x86_64") or (result.arches[0] if result.arches else None)
    before = base.arch_map.get(arch.arch) if arch is not None else None
    if arch is None or before is None:
        return []
    added = {ch.name: ch for ch in changes if ch.kind in ("macro-added", "enumerator-added")}
    out: list[Finding] = []
    for family in arch.families:
        new = [n for n in family.members if n in added]
        old = [n for n in family.members if n not in added and n in before.macro_map]
        if not new or not old:
            continue
        where = documented_in(docs, old)
        if not where:
            continue
        for name in new:
            ch = added[name]
            patch, path, line = locator.header(ch.header, ch.line, name)
            out.append(Finding("docs-missing", "warning", patch, path, line,
                               f"{name} is new in the {family.prefix} family, which is documented "
                               f"in {', '.join(where[:3])}; the series changes no file under docs/"))
    return out
