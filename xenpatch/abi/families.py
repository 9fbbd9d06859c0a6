"""Grouping macros and enumerators into families: flag bits and enumerated values.

Pure.  Xen names the members of one namespace with a common prefix and
defines them together (``SIF_*`` in xen.h, ``XEN_DOMCTL_CDF_*`` in
domctl.h, the ``XEN_DOMCTL_*`` op list).  A family is a run of integer
macros, in definition order within one header, that share an ``_``-bounded
prefix.  Not members: bit-number helpers (``_XEN_DOMCTL_CDF_hvm`` used as
``1U<<_XEN_DOMCTL_CDF_hvm``, domctl.h/grant_table.h), bounds and
parameters (``*_SHIFT``, ``*_MAX``, ``DOMID_FIRST_RESERVED``); masks
(``*_MASK``/``*_mask``) are kept apart as reserved ranges or field masks;
``<prefix>MAX`` aliasing a member is a marker ("Max XEN_DOMCTL_CDF_*
constant.  Used for ABI checking.", domctl.h).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from .model import Family, Macro, TypeInfo

IDENT = re.compile(r"[A-Za-z_]\w*")
# Last name component meaning "a bound or a parameter of the namespace", not a member.
_BOUND_LAST = {"max", "min", "nr", "num", "count", "last", "end", "limit", "first", "bit"}
_BOUND_SUFFIX = ("shift", "size", "len", "bits", "width", "order", "offset", "version")
# Xen's own namespace: every public name may start with these, so they make no family.
GENERIC_PREFIXES = {"XEN_", "_XEN_", "__XEN_", "XEN_X86_", "XEN_ARM_"}
_BOUND_FIRST = {"first", "last", "nr", "max", "min", "num"}


@dataclass(frozen=True)
class Item:
    """One named integer of a namespace: a macro or an enumerator."""

    name: str
    value: int
    header: str
    line: int
    expr: str = ""


def common_prefix(a: str, b: str) -> str:
    """The longest prefix of A and B ending in '_' that is a proper prefix of both ('' if none)."""
    i = 0
    best = ""
    while i < min(len(a), len(b)) and a[i] == b[i]:
        if a[i] == "_" and i + 1 < len(a) and i + 1 < len(b) and any(c.isalnum() for c in a[:i]):
            best = a[: i + 1]
        i += 1
    return "" if best in GENERIC_PREFIXES else best


def is_mask(name: str) -> bool:
    """``SIF_PM_MASK``, ``GTF_type_mask``, ``XEN_DOMINF_shutdownmask`` (not ``*_UNMASKED``)."""
    return name.rsplit("_", 1)[-1].lower().endswith("mask")


def is_bound(name: str, prefix: str) -> bool:
    parts = name[len(prefix):].lower().split("_")
    return (parts[-1] in _BOUND_LAST or parts[-1].endswith(_BOUND_SUFFIX)
            or parts[0] in _BOUND_FIRST)


def is_single_bit(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def bit_members(family: Family, macros: Mapping[str, Macro]) -> list[Macro]:
    """The single-bit members of the bits FAMILY among MACROS (one arch's), in line order:
    not its masks or markers."""
    skip = set(family.masks) | set(family.markers)
    return sorted((macros[n] for n in family.members if n in macros and n not in skip
                   and is_single_bit(macros[n].value or 0)),
                  key=lambda m: m.line)


def marker_macros(family: Family, macros: Mapping[str, Macro]) -> list[Macro]:
    """FAMILY's markers (``<prefix>MAX`` naming a member) among MACROS, in line order."""
    return sorted((macros[n] for n in family.markers if n in macros), key=lambda m: m.line)


def alias_target(expr: str) -> str | None:
    """The name a macro body merely repeats (``XEN_DOMCTL_CDF_MAX XEN_DOMCTL_CDF_vpmu``), else None."""
    body = expr.strip()
    while body.startswith("(") and body.endswith(")"):
        body = body[1:-1].strip()
    return body if IDENT.fullmatch(body) else None


def helpers(macros: Sequence[Macro]) -> set[str]:
    """Bit-number helpers: ``_X`` referenced by another macro's body (``X (1U<<_X)``)."""
    candidates = {m.name for m in macros if m.name.startswith("_")}
    used: set[str] = set()
    for m in macros:
        names = _NAMES.get(m.expr)
        if names is None:
            if len(_NAMES) >= MAX_NAMES:
                _NAMES.clear()
            names = _NAMES[m.expr] = frozenset(IDENT.findall(m.expr))
        if names & candidates:
            used |= names & candidates - {m.name}
    return used


_NAMES: dict[str, frozenset[str]] = {}  # the identifiers of a macro body, by its text
MAX_NAMES = 16384  # distinct bodies kept (a tree has about 2500 a view)


def runs(items: Sequence[Item]) -> list[tuple[str, list[Item]]]:
    """Maximal runs of ITEMS (one header, in line order) sharing a prefix, with that prefix.

    The first two members fix the prefix, unless the second and third share a
    longer one (then the first stands alone: ``XEN_DOMCTL_INTERFACE_VERSION``
    before ``XEN_DOMCTL_CDF_*``).  A member sharing less ends the run, except
    that a run of two whose prefix was too specific (``XENFEAT_writable_page_tables``,
    ``XENFEAT_writable_descriptor_tables``) widens once to the prefix the next
    two members share (``XENFEAT_``)."""
    out: list[tuple[str, list[Item]]] = []
    i = 0
    while i < len(items):
        first = items[i].name
        prefix = common_prefix(first, items[i + 1].name) if i + 1 < len(items) else ""
        if not prefix or (i + 2 < len(items) and len(
                common_prefix(items[i + 1].name, items[i + 2].name)) > len(prefix)):
            i += 1
            continue
        run = [items[i], items[i + 1]]
        j = i + 2
        while j < len(items):
            name = items[j].name
            if not name.startswith(prefix):
                shared = common_prefix(first, name)
                nxt = items[j + 1].name if j + 1 < len(items) else ""
                if not (len(run) == 2 and shared and common_prefix(name, nxt) == shared):
                    break
                prefix = shared
            run.append(items[j])
            j += 1
        out.append((prefix, run))
        i = j
    return out


def group_families(macros: Sequence[Macro], types: Sequence[TypeInfo]) -> tuple[Family, ...]:
    """Flag and value families of one arch: macro runs per header, and enumerations."""
    helper = helpers(macros)
    by_header: dict[str, list[tuple[str, int, int, str]]] = {}
    for m in macros:
        if m.value is not None and m.name not in helper:
            by_header.setdefault(m.header, []).append((m.name, m.value, m.line, m.expr))
    found: list[tuple[Item, Family]] = []
    for header in sorted(by_header):
        found.extend(_grouped(header, tuple(sorted(by_header[header], key=lambda it: it[2]))))
    for t in sorted(types, key=lambda t: (t.header, t.line)):
        if t.kind == "enum" and len(t.enumerators) >= 2:
            found.extend(_grouped(t.header, tuple((e.name, e.value, t.line, "")
                                                  for e in t.enumerators)))
    families: dict[str, Family] = {}
    for first, family in found:
        prefix = family.prefix
        key = prefix if prefix not in families else f"{prefix}@{first.header}:{first.line}"
        families[key] = family if key == prefix else replace(family, prefix=key)
    return tuple(sorted(families.values(), key=lambda f: f.prefix))


# ``_grouped``'s answers by header and items: most are the same on the other arches of a
# pass, on the other side of a diff and in a patched tree (measured: grouping was 14% of a
# one-header patch's dump on a cached base; a header's families are a function of its
# items alone).
_GROUPED: dict[tuple[str, tuple[tuple[str, int, int, str], ...]],
               tuple[tuple[Item, Family], ...]] = {}
MAX_GROUPED = 4096


def _grouped(header: str, items: tuple[tuple[str, int, int, str], ...]
             ) -> tuple[tuple[Item, Family], ...]:
    """The families of the ITEMS (name, value, line, expression; in line order) of one
    header or enumeration in HEADER (``runs``, ``make_family``), each with its first item."""
    key = (header, items)
    hit = _GROUPED.get(key)
    if hit is None:
        made = ((run[0], make_family(prefix, run)) for prefix, run in
                runs([Item(name, value, header, line, expr) for name, value, line, expr in items]))
        hit = tuple((first, family) for first, family in made if family is not None)
        if len(_GROUPED) >= MAX_GROUPED:
            _GROUPED.clear()
        _GROUPED[key] = hit
    return hit


def make_family(prefix: str, items: Sequence[Item]) -> Family | None:
    """Classify the items of one prefix: members, masks, markers; bits or values."""
    names = {it.name for it in items}
    members: list[Item] = []
    masks: list[Item] = []
    markers: list[str] = []
    for it in items:
        target = alias_target(it.expr)
        if it.name == prefix + "MAX" and target in names:
            markers.append(it.name)
        elif is_mask(it.name):
            masks.append(it)
        elif not is_bound(it.name, prefix):
            members.append(it)
    if len(members) < 2:
        return None
    if not is_bits(members):
        return Family(prefix, "values", tuple(it.name for it in members),
                      masks=tuple(m.name for m in masks), markers=tuple(markers))
    used = 0
    for it in members:
        if it.value > 0:
            used |= it.value
    reserved = 0
    for m in masks:
        if m.value > 0 and is_reserved_mask(m, members):
            reserved |= m.value
    return Family(prefix, "bits", tuple(it.name for it in members), used_mask=used,
                  reserved_mask=reserved, masks=tuple(m.name for m in masks),
                  markers=tuple(markers))


def is_bits(members: Sequence[Item]) -> bool:
    """Flags: most non-zero members are single bits, and most are written as shifts
    (``(1U<<_XEN_DOMCTL_CDF_hvm)``) or all are single bits reaching beyond 0, 1, 2, 4."""
    nonzero = [it for it in members if it.value != 0]
    single = [it for it in nonzero if is_single_bit(it.value)]
    if not nonzero or len(single) * 2 <= len(nonzero):
        return False
    shifts = sum("<<" in it.expr for it in nonzero) * 2 > len(nonzero)
    return shifts or (len(single) == len(nonzero) and max(it.value for it in nonzero) >= 8)


def is_reserved_mask(mask: Item, members: Sequence[Item]) -> bool:
    """A reserved range (``SIF_PM_MASK``: "reserve 1 byte for xen-pm options", xen.h) covers
    at most one flag (the intruder).  A field mask holds enumerated values (a zero or
    multi-bit member lies in it: ``GTF_type_mask``), groups several flags
    (``PG_OFFLINE_STATUS_MASK``), or is written in terms of members."""
    inside = [it for it in members if it.value >= 0 and it.value & mask.value == it.value]
    names = set(IDENT.findall(mask.expr))
    return (len(inside) <= 1 and all(is_single_bit(it.value) for it in inside)
            and not names & {it.name for it in members})
