"""Compare two ABI models: what was added, removed or changed, per arch, merged and rated.

Pure: takes two ``AbiModel`` values, returns ``Change`` values; the text,
JSON (``xenpatch-abidiff/1``, DESIGN.md "Findings and changes") and
Markdown renderings are pure too.

Severity rules (what a guest or toolstack built against OLD sees with NEW):

* **breaking** — a macro, type, field or enumerator that existed is gone;
  an integer macro or enumerator has another value; a type's size or
  alignment moved; a field's offset or bit position moved; a field's type
  changed size.  Code compiled against OLD would now read or write the
  wrong thing.
* **compatible** — something new: a macro, a type, an enumerator, a field
  that fits without moving anything (the record keeps its size and
  alignment, e.g. taken from padding).  A padding field (``pad``,
  ``_pad1``, ``reserved``...) that disappears while its record keeps its
  size is the usual way Xen grows a struct (new fields take the padding),
  so that removal is compatible too.  A field added at the end of a struct
  that grows it is breaking (its record's size moved: both the field and
  the size change are reported as breaking).
* **info** — a change that is meant to happen or that the compiler does not
  see in the layout: a version number (``__XEN_LATEST_INTERFACE_VERSION__``,
  ``XEN_DOMCTL_INTERFACE_VERSION``: bumped on purpose with each interface
  change, xen-compat.h, domctl.h) or a ``*_MAX`` marker ("Used for ABI
  checking", domctl.h: it follows the newest member) that changed value; a
  field
  whose type is spelt differently but has the same size and position
  (``uint64_t`` to ``uint64_aligned_t`` on x86_64); a macro whose integer
  value cannot be computed on one side (``value`` None), so only its text
  changed.

Only arches present in both models are compared.  Headers that failed to
parse on either side are left out (their contents would otherwise appear
removed); ``abi check`` reports those failures.  Anonymous enumerations
(``enum <header>:<line>``) move whenever a line is inserted above them, so
they are not compared as types; their enumerators are compared by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .model import AbiModel, ArchModel, Field, TypeInfo

SCHEMA = "xenpatch-abidiff/1"
KINDS = (
    "macro-added", "macro-removed", "macro-value-changed",
    "type-added", "type-removed", "type-size-changed", "type-align-changed",
    "field-added", "field-removed", "field-offset-changed", "field-type-changed",
    "enumerator-added", "enumerator-removed", "enumerator-value-changed",
    # The interface rules (interfaces.py): a tools-only break without its version bump,
    # and a removed macro that was another name for one that stays (an API change).
    "interface-version", "macro-alias-removed",
)
INTERFACES = ("stable", "tools")
SEVERITIES = ("breaking", "compatible", "info")
# Names Xen gives to padding and reserved space in public structs
# (xen/include/public/*.h: pad, _pad1, pad0[3], reserved, rsvd, _rsvd).
# Macros whose value changes by design: interface versions and *_MAX markers.
_MOVING = re.compile(r"(INTERFACE_VERSION|_MAX)_*$")
_PADDING = re.compile(r"^_*(pad|padding|reserved|rsvd|resvd|unused)\d*$", re.IGNORECASE)


@dataclass(frozen=True)
class Change:
    """One difference between two snapshots, on the arches listed."""

    kind: str  # one of KINDS
    severity: str  # breaking | compatible | info
    name: str  # the macro, type or enumerator
    arches: tuple[str, ...]
    header: str  # relative to xen/include/public/; NEW's for additions and changes, OLD's for removals
    line: int
    old: object = None
    new: object = None
    field: str | None = None  # dotted path inside the type, for field changes
    # Added by interfaces.judge (None/"" from diff_models alone):
    interface: str | None = None  # stable (guest-visible) | tools (__XEN__/__XEN_TOOLS__ only)
    message: str = ""  # why the interface rules rated it so, citing the rule's source
    base_kind: str | None = None  # for interface-version: the kind of the change itself
    version_macro: str | None = None  # the *_INTERFACE_VERSION that governs a tools change

    def sort_key(self) -> tuple[Any, ...]:
        return (self.header, self.line, self.name, self.field or "", KINDS.index(self.kind),
                repr(self.old), repr(self.new))


def diff_models(old: AbiModel, new: AbiModel) -> tuple[Change, ...]:
    """Every change from OLD to NEW, merged across arches, sorted by header, line and name."""
    arch_order = [a.arch for a in new.arches if a.arch in old.arch_map]
    merged: dict[tuple[Any, ...], tuple[Change, list[str]]] = {}
    for arch in arch_order:
        for ch in diff_arch(old.arch_map[arch], new.arch_map[arch]):
            key = (ch.kind, ch.severity, ch.name, ch.header, ch.line, repr(ch.old), repr(ch.new),
                   ch.field)
            merged.setdefault(key, (ch, []))[1].append(arch)
    out = [Change(ch.kind, ch.severity, ch.name, tuple(arches), ch.header, ch.line, ch.old,
                  ch.new, ch.field) for ch, arches in merged.values()]
    return tuple(sorted(out, key=Change.sort_key))


def diff_arch(old: ArchModel, new: ArchModel) -> tuple[Change, ...]:
    """The changes on one arch (``arches`` is that one arch)."""
    known = _REMEMBERED.get((id(old), id(new)))
    if known is not None and known[0] is old and known[1] is new:
        return known[2]
    skip = {f.header for f in old.failed} | {f.header for f in new.failed}
    arch = (new.arch,)
    out: list[Change] = []
    out += _diff_macros(old, new, skip, arch)
    out += _diff_types(old, new, skip, arch)
    out += _diff_enumerators(old, new, skip, arch)
    return tuple(out)


# diff_arch's result for two models, worked out where they were made (a worker process,
# ``api.start``'s AGAINST) while this process did its own arches; by the ids of the
# models as this process has them, which the entry keeps alive.
_REMEMBERED: dict[tuple[int, int], tuple[ArchModel, ArchModel, tuple[Change, ...]]] = {}
MAX_REMEMBERED = 16


def remember(old: ArchModel, new: ArchModel, changes: tuple[Change, ...]) -> None:
    """Have ``diff_arch(OLD, NEW)`` give CHANGES: what it gave for equal models elsewhere."""
    _REMEMBERED[(id(old), id(new))] = (old, new, changes)
    while len(_REMEMBERED) > MAX_REMEMBERED:
        del _REMEMBERED[next(iter(_REMEMBERED))]


def _diff_macros(old: ArchModel, new: ArchModel, skip: set[str],
                 arch: tuple[str, ...]) -> list[Change]:
    out: list[Change] = []
    om = {n: m for n, m in old.macro_map.items() if m.header not in skip}
    nm = {n: m for n, m in new.macro_map.items() if m.header not in skip}
    for name in nm.keys() - om.keys():
        m = nm[name]
        out.append(Change("macro-added", "compatible", name, arch, m.header, m.line,
                          None, m.value if m.value is not None else m.expr))
    for name in om.keys() - nm.keys():
        m = om[name]
        out.append(Change("macro-removed", "breaking", name, arch, m.header, m.line,
                          m.value if m.value is not None else m.expr, None))
    for name in om.keys() & nm.keys():
        a, b = om[name], nm[name]
        if a.value is not None and b.value is not None:
            if a.value != b.value:
                severity = "info" if _MOVING.search(name) else "breaking"
                out.append(Change("macro-value-changed", severity, name, arch, b.header,
                                  b.line, a.value, b.value))
        elif a.value != b.value or a.expr != b.expr:
            out.append(Change("macro-value-changed", "info", name, arch, b.header, b.line,
                              a.value if a.value is not None else a.expr,
                              b.value if b.value is not None else b.expr))
    return out


def _anonymous_enum(t: TypeInfo) -> bool:
    return t.kind == "enum" and t.name.startswith("enum ") and ":" in t.name


def _diff_types(old: ArchModel, new: ArchModel, skip: set[str],
                arch: tuple[str, ...]) -> list[Change]:
    out: list[Change] = []
    ot = {n: t for n, t in old.type_map.items() if t.header not in skip and not _anonymous_enum(t)}
    nt = {n: t for n, t in new.type_map.items() if t.header not in skip and not _anonymous_enum(t)}
    for name in nt.keys() - ot.keys():
        t = nt[name]
        out.append(Change("type-added", "compatible", name, arch, t.header, t.line, None, t.size))
    for name in ot.keys() - nt.keys():
        t = ot[name]
        out.append(Change("type-removed", "breaking", name, arch, t.header, t.line, t.size, None))
    for name in ot.keys() & nt.keys():
        a, b = ot[name], nt[name]
        if a.size != b.size:
            out.append(Change("type-size-changed", "breaking", name, arch, b.header, b.line,
                              a.size, b.size))
        if a.align != b.align:
            out.append(Change("type-align-changed", "breaking", name, arch, b.header, b.line,
                              a.align, b.align))
        if a.kind != "enum" and a.fields != b.fields:  # equal fields: no field changes
            out += _diff_fields(a, b, arch)
    return out


def _position(f: Field) -> tuple[int, int | None]:
    return (f.offset, f.bit_offset)


def _diff_fields(a: TypeInfo, b: TypeInfo, arch: tuple[str, ...]) -> list[Change]:
    """Field changes inside one record; paths are dotted (``console.domU.mfn``)."""
    out: list[Change] = []
    same_shape = a.size == b.size and a.align == b.align
    of = {p: f for p, f in a.walk_fields() if p}
    nf = {p: f for p, f in b.walk_fields() if p}
    for path in sorted(nf.keys() - of.keys()):
        f = nf[path]
        out.append(Change("field-added", "compatible" if same_shape else "breaking", b.name,
                          arch, b.header, b.line, None, f"{f.type} @ {f.offset}", path))
    for path in sorted(of.keys() - nf.keys()):
        f = of[path]
        leaf = path.rsplit(".", 1)[-1]
        padding = bool(_PADDING.match(leaf)) and same_shape
        out.append(Change("field-removed", "compatible" if padding else "breaking", b.name,
                          arch, b.header, b.line, f"{f.type} @ {f.offset}", None, path))
    for path in sorted(of.keys() & nf.keys()):
        x, y = of[path], nf[path]
        if _position(x) != _position(y):
            out.append(Change("field-offset-changed", "breaking", b.name, arch, b.header,
                              b.line, _show_pos(x), _show_pos(y), path))
        if (x.size, x.bit_size) != (y.size, y.bit_size):
            out.append(Change("field-type-changed", "breaking", b.name, arch, b.header, b.line,
                              _show_type(x), _show_type(y), path))
        elif x.type != y.type and not (x.fields and y.fields):
            out.append(Change("field-type-changed", "info", b.name, arch, b.header, b.line,
                              x.type, y.type, path))
    return out


def _show_pos(f: Field) -> object:
    return f.offset if f.bit_offset is None else f"{f.offset} (bit {f.bit_offset})"


def _show_type(f: Field) -> str:
    width = f":{f.bit_size}" if f.bit_size is not None else ""
    return f"{f.type}{width} ({f.size} bytes)"


def _diff_enumerators(old: ArchModel, new: ArchModel, skip: set[str],
                      arch: tuple[str, ...]) -> list[Change]:
    def table(m: ArchModel) -> dict[str, tuple[int, TypeInfo]]:
        return {e.name: (e.value, t) for t in m.types
                if t.kind == "enum" and t.header not in skip for e in t.enumerators}

    oe, ne = table(old), table(new)
    out: list[Change] = []
    for name in ne.keys() - oe.keys():
        value, t = ne[name]
        out.append(Change("enumerator-added", "compatible", name, arch, t.header, t.line,
                          None, value))
    for name in oe.keys() - ne.keys():
        value, t = oe[name]
        out.append(Change("enumerator-removed", "breaking", name, arch, t.header, t.line,
                          value, None))
    for name in oe.keys() & ne.keys():
        (va, _), (vb, t) = oe[name], ne[name]
        if va != vb:
            out.append(Change("enumerator-value-changed", "breaking", name, arch, t.header,
                              t.line, va, vb))
    return out


def count(changes: Iterable[Change]) -> dict[str, int]:
    """How many changes of each severity."""
    out = dict.fromkeys(SEVERITIES, 0)
    for ch in changes:
        out[ch.severity] += 1
    return out


def has_breaking(changes: Iterable[Change]) -> bool:
    return any(ch.severity == "breaking" for ch in changes)


def changes_json(changes: Sequence[Change], old: str, new: str) -> dict[str, Any]:
    """The ``xenpatch-abidiff/1`` document (DESIGN.md); ``arch`` is a list."""
    items = []
    for ch in changes:
        item: dict[str, Any] = {"kind": ch.kind, "severity": ch.severity, "name": ch.name,
                                "old": ch.old, "new": ch.new, "arch": list(ch.arches),
                                "header": ch.header, "line": ch.line}
        if ch.field is not None:
            item["field"] = ch.field
        for key in ("interface", "base_kind", "version_macro"):
            if getattr(ch, key) is not None:
                item[key] = getattr(ch, key)
        if ch.message:
            item["message"] = ch.message
        items.append(item)
    return {"schema": SCHEMA, "old": old, "new": new, "changes": items, "summary": count(changes)}


def change_name(ch: Change) -> str:
    """The macro, type or enumerator, with the field's dotted path when there is one."""
    return f"{ch.name}.{ch.field}" if ch.field else ch.name


def old_new(ch: Change) -> str:
    """What the change did, in a few words: the new value, what was removed, or old -> new."""
    kind = ch.base_kind or ch.kind  # interface-version: the kind of the change itself
    if kind.endswith("-added"):
        return f"{ch.new}"
    if kind.endswith("-removed"):
        return f"was {ch.old}"
    return f"{ch.old} -> {ch.new}"


def _summary(changes: Sequence[Change]) -> str:
    c = count(changes)
    return (f"{len(changes)} change{'s' if len(changes) != 1 else ''}: {c['breaking']} breaking, "
            f"{c['compatible']} compatible, {c['info']} info")


def changes_text(changes: Sequence[Change]) -> str:
    """One line per change, ``header:line: severity: kind: name: old -> new [arches]``, then a summary."""
    lines = []
    for ch in changes:
        where = f" ({ch.interface})" if ch.interface else ""
        lines.append(f"{ch.header}:{ch.line}: {ch.severity}: {ch.kind}: {change_name(ch)}: "
                     f"{old_new(ch)} [{','.join(ch.arches)}]{where}")
        if ch.message:
            lines.append(f"    {ch.message}")
    lines.append(_summary(changes))
    return "\n".join(lines) + "\n"


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def changes_markdown(changes: Sequence[Change]) -> str:
    """A Markdown report: a summary line and one table row per change."""
    out = ["## ABI changes", "", _summary(changes), ""]
    if changes:
        out += ["| severity | kind | name | old | new | arches | where |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for ch in changes:
            cells = (ch.severity, ch.kind, f"`{change_name(ch)}`", "" if ch.old is None else ch.old,
                     "" if ch.new is None else ch.new, ", ".join(ch.arches),
                     f"{ch.header}:{ch.line}")
            out.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out)
