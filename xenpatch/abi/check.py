"""`abi check`: collisions inside one snapshot of the ABI model (rules abi-bit-collision,
abi-reserved-bits, abi-value-collision, abi-max-marker, abi-redefinition).

Pure: takes an ``AbiModel`` (families already grouped by ``families.py``) and
returns findings, merged across arches.  Intentional overlaps in real Xen are
told apart by general rules: aliases (a body that is just another name:
``FLAT_KERNEL_CS FLAT_KERNEL_CS64``, ``XEN_DOMCTL_CDF_MAX``), field values
inside their own field mask (``GTF_type_mask``), overlays (two or more
consecutive members that all reuse earlier values: ``GTF_transfer_committed``
/ ``GTF_transfer_completed`` reuse the ``GTF_readonly``/``GTF_reading`` bits,
grant_table.h "Subflags for GTF_accept_transfer") reported as ``info``, and
duplicate enumerators (C enums alias freely: ``XEN_EWOULDBLOCK``) as ``info``.
What remains is listed in ``[[suppress]]`` of config.toml with its reason.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .families import IDENT, Item, alias_target, common_prefix, is_reserved_mask
from .model import AbiModel, ArchModel, Family, Macro

SCHEMA = "xenpatch-check/1"
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "error" | "warning" | "info"
    arches: tuple[str, ...]
    header: str
    line: int
    name: str
    message: str


@dataclass(frozen=True)
class _Member:
    item: Item
    alias: bool  # the body is just another name
    enum: bool  # an enumerator, not a macro
    uses: frozenset[str] = frozenset()  # macros its body reaches, transitively
    family_size: int = 0
    sub: str = ""  # its sub-namespace inside the family ("XEN_DOMCTL_vmtrace_"), or ""


def _uses(expr: str, macros: Mapping[str, Macro], depth: int = 8) -> frozenset[str]:
    """The object-like macros EXPR refers to, directly or through their bodies."""
    seen: set[str] = set()
    todo = [t for t in IDENT.findall(expr) if t in macros]
    while todo and depth:
        nxt: list[str] = []
        for name in todo:
            if name not in seen:
                seen.add(name)
                nxt.extend(t for t in IDENT.findall(macros[name].expr) if t in macros)
        todo, depth = nxt, depth - 1
    return frozenset(seen)


def _derived(a: _Member, b: _Member, macros: Mapping[str, Macro]) -> bool:
    """A and B are one definition under two names: one uses the other (``XEN_X86_EMU_ALL``,
    ``MEM_ACCESS_RWX``) or both reach a macro of their common value
    (``MACH2PHYS_VIRT_START`` and ``MACH2PHYS_VIRT_START_PAE`` on x86_32)."""
    if a.item.name in b.uses or b.item.name in a.uses:
        return True
    return any(macros[n].value == a.item.value == b.item.value for n in a.uses & b.uses)


def check_model(model: AbiModel, suppress: Sequence[Mapping[str, str]] = ()) -> tuple[Finding, ...]:
    """All findings of MODEL, merged across arches, minus the suppressed ones, sorted."""
    per_arch: list[Finding] = []
    for arch in model.arches:
        per_arch.extend(check_arch(arch))
    merged: dict[tuple[str, str, str, int, str, str], list[str]] = {}
    for f in per_arch:
        merged.setdefault((f.rule, f.severity, f.header, f.line, f.name, f.message), []).extend(f.arches)
    findings = []
    for (rule, severity, header, line, name, message), arches in merged.items():
        kept = tuple(a for a in arches if not _suppressed(rule, name, a, suppress))
        if kept:
            findings.append(Finding(rule, severity, kept, header, line, name, message))
    return tuple(sorted(findings, key=lambda f: (f.header, f.line, f.rule, f.name)))


def _suppressed(rule: str, name: str, arch: str, suppress: Sequence[Mapping[str, str]]) -> bool:
    for entry in suppress:
        if entry.get("rule") == rule and fnmatch.fnmatchcase(name, entry.get("name", "")):
            if not entry.get("arch") or entry.get("arch") == arch:
                return True
    return False


def check_arch(arch: ArchModel) -> list[Finding]:
    """Findings of one arch (``arches`` holds just that arch)."""
    enumerators = {e.name: Item(e.name, e.value, t.header, t.line)
                   for t in arch.types if t.kind == "enum" for e in t.enumerators}
    out: list[Finding] = []
    for family in arch.families:
        members = _members(family, arch, enumerators)
        masks = [_item(n, arch, enumerators) for n in family.masks]
        mask_items = [m for m in masks if m is not None]
        if family.kind == "bits":
            out.extend(_check_bits(members, mask_items, arch))
        else:
            out.extend(_value_collisions(members, arch))
        out.extend(_check_markers(family, members, arch))
    for old in arch.redefined:
        new = arch.macro_map.get(old.name)
        if new is not None and new.value != old.value:
            out.append(Finding("abi-redefinition", "error", (arch.arch,), new.header, new.line,
                               new.name, f"{new.name} redefined as {new.expr} ({new.value}); "
                               f"was {old.expr} ({old.value}) at {old.header}:{old.line}"))
    return out


def _item(name: str, arch: ArchModel, enumerators: Mapping[str, Item]) -> Item | None:
    m = arch.macro_map.get(name)
    if m is not None and m.value is not None:
        return Item(m.name, m.value, m.header, m.line, m.expr)
    return enumerators.get(name)


def sub_namespaces(prefix: str, names: Sequence[str]) -> dict[str, str]:
    """Each member's sub-namespace: the longer prefix it shares with a neighbour in definition
    order (``XEN_DOMCTL_vmtrace_enable``/``..._disable`` inside ``XEN_DOMCTL_``), else ""."""
    base = prefix.split("@", 1)[0]
    out: dict[str, str] = {}
    for i, name in enumerate(names):
        near = [names[j] for j in (i - 1, i + 1) if 0 <= j < len(names)]
        subs = [common_prefix(name, n) for n in near]
        best = max(subs, key=len, default="")
        out[name] = best if len(best) > len(base) else ""
    return out


def _members(family: Family, arch: ArchModel, enumerators: Mapping[str, Item]) -> list[_Member]:
    names = family.members
    located = [(it.header, it.line, it.name) for n in (*names, *family.masks, *family.markers)
               if (it := _item(n, arch, enumerators)) is not None]
    subs = sub_namespaces(family.prefix, [n for _, _, n in sorted(located)])
    out = []
    for name in names:
        item = _item(name, arch, enumerators)
        if item is None:
            continue
        target = alias_target(item.expr) if item.expr else None
        known = target is not None and (target in arch.macro_map or target in enumerators)
        out.append(_Member(item, alias=known, enum=name not in arch.macro_map,
                           uses=_uses(item.expr, arch.macro_map), family_size=len(names),
                           sub=subs.get(name, "")))
    return out


def _check_bits(members: list[_Member], masks: list[Item], model: ArchModel) -> list[Finding]:
    arch = model.arch
    out: list[Finding] = []
    plain = [m.item for m in members if not m.alias]
    fields = [mk for mk in masks if mk.value > 0 and not is_reserved_mask(mk, plain)]
    reserved = [mk for mk in masks if mk.value > 0 and mk not in fields]
    flags: list[_Member] = []
    field_values: dict[str, list[_Member]] = {}
    for m in members:
        field = next((f for f in fields if m.item.value >= 0
                      and m.item.value & f.value == m.item.value), None)
        if field is not None:
            field_values.setdefault(field.name, []).append(m)
        elif m.item.value > 0:
            flags.append(m)
    for values in field_values.values():
        out.extend(_value_collisions(values, model))
    out.extend(_collisions(flags, model, lambda a, b: a & b != 0, "abi-bit-collision",
                           "shares bits {common:#x} with"))
    for m in flags:
        if m.alias:
            continue
        for f in fields:
            if m.item.value & f.value:
                out.append(_finding("abi-bit-collision", "error", arch, m.item,
                                    f"{_show(m.item)} overlaps field {f.name} ({bits_text(f.value)})"))
        for r in reserved:
            if m.item.value & r.value:
                out.append(_finding("abi-reserved-bits", "error", arch, m.item,
                                    f"{_show(m.item)} lies in {r.name} ({bits_text(r.value)})"))
    return out


def _value_collisions(members: list[_Member], model: ArchModel) -> list[Finding]:
    return _collisions(members, model, lambda a, b: a == b, "abi-value-collision", "has the value of")


def _collisions(members: list[_Member], model: ArchModel, clash: Callable[[int, int], bool],
                rule: str, verb: str) -> list[Finding]:
    """Each member clashing with an earlier one.  A streak of two or more consecutive
    clashing members is an overlay (info); in a family of two, a clash is a warning (two
    parameters, not a namespace: ``GUEST_ROOT_ADDRESS_CELLS``/``GUEST_ROOT_SIZE_CELLS``);
    clashing enumerators are info (C enums alias: ``XEN_EWOULDBLOCK``); else an error."""
    arch = model.arch
    streak: list[tuple[_Member, _Member]] = []
    out: list[Finding] = []

    def flush() -> None:
        severity = "info" if len(streak) >= 2 else "error"
        for m, other in streak:
            sev, note = severity, " (overlay: consecutive members reuse earlier values)"
            if len(streak) < 2:
                sev, note = _lone_clash(m, other, rule)
            what = verb.format(common=m.item.value & other.item.value)
            out.append(_finding(rule, sev, arch, m.item,
                                f"{_show(m.item)} {what} {_show(other.item)} at "
                                f"{other.item.header}:{other.item.line}{note}"))
        streak.clear()

    seen: list[_Member] = []
    for m in members:
        if m.alias:
            continue
        other = next((o for o in seen if clash(m.item.value, o.item.value)
                      and not _derived(m, o, model.macro_map)), None)
        if other is None:
            flush()
        else:
            streak.append((m, other))
        seen.append(m)
    flush()
    return out


def _lone_clash(m: _Member, other: _Member, rule: str) -> tuple[str, str]:
    """Severity and note of a single member clashing with an earlier one."""
    if m.enum or other.enum:
        return "info", " (enumerators may alias)"
    if m.sub != other.sub:
        return "info", " (another sub-namespace)"
    if rule == "abi-value-collision" and ("<<" in m.item.expr) != ("<<" in other.item.expr):
        return "info", " (a flag and an enumerated value)"
    # Xen spells sub-op names in lower case (XEN_DOMCTL_createdomain, XENMEM_populate_physmap)
    # and option constants in upper case (XEN_DOMCTL_DT_OVERLAY_ATTACH): different namespaces.
    if rule == "abi-value-collision" and _has_lower(m) != _has_lower(other):
        return "info", " (an op and a constant)"
    if m.family_size <= 2:
        return "warning", " (a family of two)"
    return "error", ""


def _has_lower(m: _Member) -> bool:
    return any(c.islower() for c in m.item.name.lstrip("_").split("_", 1)[-1])


def _check_markers(family: Family, members: list[_Member], arch: ArchModel) -> list[Finding]:
    """``<prefix>MAX`` must be the highest member ("Used for ABI checking", domctl.h)."""
    out: list[Finding] = []
    for name in family.markers:
        marker = arch.macro_map.get(name)
        target = next((m for m in members if m.item.name == alias_target(marker.expr)), None) \
            if marker is not None else None
        real = [m.item for m in members
                if not m.alias and (target is None or m.sub == target.sub)]
        if marker is None or marker.value is None or not real:
            continue
        top = max(real, key=lambda it: (it.value, it.line))
        if marker.value == top.value:
            continue
        out.append(Finding("abi-max-marker", "error", (arch.arch,), marker.header, marker.line,
                           name, f"{name} is {marker.expr} ({marker.value}) but {top.name} "
                           f"({top.value}) at {top.header}:{top.line} is higher"))
    return out


def _finding(rule: str, severity: str, arch: str, item: Item, message: str) -> Finding:
    return Finding(rule, severity, (arch,), item.header, item.line, item.name, message)


def _show(item: Item) -> str:
    return f"{item.name} {item.expr}" if item.expr else f"{item.name} ({item.value})"


def bits_text(mask: int) -> str:
    """``bit 5``, ``bits 8-15`` for a contiguous mask, else ``mask 0x...`` (as findings say it)."""
    low = (mask & -mask).bit_length() - 1
    high = mask.bit_length() - 1
    if mask == ((1 << (high + 1)) - (1 << low)):
        return f"bit {low}" if low == high else f"bits {low}-{high}"
    return f"mask {mask:#x}"


def findings_json(findings: Sequence[Finding]) -> dict:
    """The ``xenpatch-check/1`` document (DESIGN.md "Findings and changes")."""
    return {"schema": SCHEMA, "findings": [
        {"rule": f.rule, "severity": f.severity, "arch": list(f.arches), "header": f.header,
         "line": f.line, "name": f.name, "message": f.message} for f in findings]}


def findings_text(findings: Sequence[Finding]) -> str:
    """One line per finding, ``header:line: severity: rule: message [arches]``, and a summary."""
    lines = [f"{f.header}:{f.line}: {f.severity}: {f.rule}: {f.message} [{','.join(f.arches)}]"
             for f in findings]
    counts = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
    lines.append(", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items()))
    return "\n".join(lines) + "\n"
