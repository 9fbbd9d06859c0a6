"""ABI rules of a review: what ``abi check`` finds new in the result, what ``abi diff`` rates, bit facts.

* The ``abi check`` rules (``abi-bit-collision``, ``abi-reserved-bits``...)
  are reported only when the base does not have them already: a finding
  of the base is not the series' fault (as the kernel's 0-day bot reports
  only new warnings); ``generate.selfcheck.new_findings`` decides.
* ``abi diff`` changes become ``abi-layout-change``, ``abi-value-change``
  and ``abi-removed`` (``change_rule``), rated by ``change_severity``: a
  breaking change in a stable (guest-visible) interface is an error; in a
  tools-only interface (domctl.h, sysctl.h, blocks under ``__XEN__ ||
  __XEN_TOOLS__``) it is a warning, since those interfaces may change
  when their ``*_INTERFACE_VERSION`` is bumped -- the ``interface-version``
  rule is the error for a change without the bump.
* For each flag family the series adds to, one info with the bits now used
  and the next free one ("SIF_ bits now used: 0-5, next free: 6").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ...abi.check import Finding as CheckFinding
from ...abi.diff import Change
from ...abi.model import AbiModel, Family
from ...generate.selfcheck import new_findings
from ..finding import Finding
from ..locate import Locator

ALL_ARCHES = ("x86_32", "x86_64", "arm32", "arm64")
# Headers that #error unless __XEN__ or __XEN_TOOLS__ is defined ("intended for use
# by node control tools only", domctl.h, sysctl.h): their whole content is tools-only.
TOOLS_HEADERS = ("domctl.h", "sysctl.h")
_LAYOUT = ("type-size-changed", "type-align-changed", "field-offset-changed",
           "field-type-changed", "field-added")
_VALUE = ("macro-value-changed", "enumerator-value-changed")
_REMOVED = ("macro-removed", "type-removed", "field-removed", "enumerator-removed")


def interface_of(ch: Change) -> str:
    """``stable`` or ``tools``: abi/diff.py's own rating when it has one (``Change.interface``,
    the drift work), else by header (TOOLS_HEADERS)."""
    rated = getattr(ch, "interface", None)
    if rated in ("stable", "tools"):
        return str(rated)
    return "tools" if ch.header in TOOLS_HEADERS else "stable"


def change_rule(ch: Change) -> str | None:
    """The review rule of an ``abi diff`` change, or None when it is not a finding
    (additions that move nothing; version numbers and markers that move by design).

    ``interface-version`` (a tools-only break without its ``*_INTERFACE_VERSION``
    bump, abi/diff.py's kind when the drift work has landed) maps to its own rule."""
    if ch.kind == "interface-version":
        return "interface-version"
    if ch.kind == "macro-alias-removed":  # abi/diff.py's kind once the drift work lands
        return "abi-removed"
    if ch.severity != "breaking":
        return None
    if ch.kind in _LAYOUT:
        return "abi-layout-change"
    if ch.kind in _VALUE:
        return "abi-value-change"
    if ch.kind in _REMOVED:
        return "abi-removed"
    return None


# Removals of a tools-only definition: a toolstack built against the old headers that
# still uses it gets an error from Xen (an unknown sub-op), it misreads nothing.  A bump
# is still what domctl.h/sysctl.h ask for, and a reviewer says so (a warning); a size,
# offset or value that moves without one is an error.  Merged precedent: 370c23d0329f
# dropped XEN_SYSCTL_get_cpu_levelling_caps with XEN_SYSCTL_INTERFACE_VERSION unchanged.
_REMOVALS = ("macro-removed", "type-removed", "enumerator-removed", "field-removed")


def change_severity(ch: Change, alias: str | None = None) -> str:
    """error for an ABI break of a stable interface and for ``interface-version`` (a warning
    when what went without the bump is only a removal: _REMOVALS); warning for a break of a
    tools-only interface, and for a removed alias (ALIAS: the name that keeps the value):
    an API change, the ABI holds."""
    if ch.kind == "interface-version":
        return "warning" if getattr(ch, "base_kind", None) in _REMOVALS else "error"
    if ch.kind == "macro-alias-removed" or alias:
        return "warning"
    return "error" if interface_of(ch) == "stable" else "warning"


def arches_text(arches: Iterable[str]) -> str:
    arches = tuple(arches)
    return "all arches" if set(arches) >= set(ALL_ARCHES) else ", ".join(arches)


def _alias_kept(ch: Change, old: AbiModel | None, new: AbiModel | None) -> str | None:
    """For a removed macro whose body was just another name that the result still has
    (``#define VGCF_IN_KERNEL VGCF_in_kernel``... or the same value): that name."""
    if ch.kind not in ("macro-removed", "macro-alias-removed") or old is None or new is None:
        return None
    for arch in ch.arches:
        before, after = old.arch_map.get(arch), new.arch_map.get(arch)
        m = before.macro_map.get(ch.name) if before else None
        if m is None or after is None:
            continue
        if m.expr in after.macro_map:
            return m.expr
        same = [n for n, x in after.macro_map.items() if x.header == m.header and
                x.value is not None and x.value == m.value and n.lower() == ch.name.lower()]
        if same:
            return same[0]
    return None


def _describe(ch: Change, profile: str, alias: str | None = None) -> str:
    what = f"{ch.name}.{ch.field}" if ch.field else ch.name
    words = {
        "type-size-changed": f"{what}: size {ch.old} -> {ch.new} bytes",
        "type-align-changed": f"{what}: alignment {ch.old} -> {ch.new}",
        "field-offset-changed": f"{what}: offset {ch.old} -> {ch.new}",
        "field-type-changed": f"{what}: {ch.old} -> {ch.new}",
        "field-added": f"{what} added ({ch.new}) and it moves the layout",
        "macro-value-changed": f"{what}: value {ch.old} -> {ch.new}",
        "enumerator-value-changed": f"{what}: value {ch.old} -> {ch.new}",
        "macro-removed": f"{what} removed (was {ch.old})",
        "macro-alias-removed": f"{what} removed (was {ch.old})",
        "type-removed": f"{what} removed",
        "field-removed": f"{what} removed (was {ch.old})",
        "enumerator-removed": f"{what} removed (was {ch.old})",
    }.get(ch.kind, f"{what}: {ch.kind}: {ch.old} -> {ch.new}")
    iface = interface_of(ch)
    tail = ("breaks guests built against the base" if iface == "stable" else
            "a tools-only interface: fine only with its *_INTERFACE_VERSION bumped")
    if alias and iface == "stable":
        tail = (f"{alias} keeps the value, so the ABI holds, but code that names {ch.name} "
                "no longer compiles (an API change)")
    view = "" if profile == "tools" else f", {profile} view"
    return f"{words} [{arches_text(ch.arches)}{view}]; {tail}"


def diff_findings(changes: Sequence[Change], locator: Locator, profile: str = "tools",
                  old: AbiModel | None = None, new: AbiModel | None = None) -> list[Finding]:
    out: list[Finding] = []
    for ch in changes:
        rule = change_rule(ch)
        if rule is None:
            continue
        leaf = ch.field.split(".")[-1].rstrip("[]") if ch.field else ch.name
        if rule == "abi-removed" or (rule == "interface-version"
                                     and getattr(ch, "base_kind", None) in _REMOVALS):
            patch, path, line = locator.removal(ch.header, ch.line, leaf)
        else:
            patch, path, line = locator.header(ch.header, ch.line, leaf)
        alias = _alias_kept(ch, old, new)
        if rule == "interface-version":
            message = getattr(ch, "message", "") or \
                f"{ch.name}: {ch.old} -> {ch.new} [{arches_text(ch.arches)}]"
        else:
            message = _describe(ch, profile, alias)
        out.append(Finding(rule, change_severity(ch, alias), patch, path, line, message))
    return out


def check_findings(base: Sequence[CheckFinding], result: Sequence[CheckFinding],
                   locator: Locator) -> list[Finding]:
    """The ``abi check`` findings (errors and warnings) of RESULT that BASE does not have."""
    out: list[Finding] = []
    for f in new_findings(base, result, ("error", "warning")):
        patch, path, line = locator.header(f.header, f.line, f.name)
        out.append(Finding(f.rule, f.severity, patch, path, line,
                           f"{f.message} [{arches_text(f.arches)}]"))
    return out


def bit_ranges(mask: int) -> str:
    """``0-5, 7`` for 0b10111111."""
    parts: list[str] = []
    bit = 0
    while mask >> bit:
        if mask >> bit & 1:
            start = bit
            while mask >> (bit + 1) & 1:
                bit += 1
            parts.append(str(start) if start == bit else f"{start}-{bit}")
        bit += 1
    return ", ".join(parts) or "none"


def _next_free(family: Family) -> int:
    taken = (family.used_mask or 0) | (family.reserved_mask or 0)
    bit = 0
    while taken >> bit & 1:
        bit += 1
    return bit


def family_facts(changes: Sequence[Change], result: AbiModel, locator: Locator) -> list[Finding]:
    """One info per bits family that gained a member: the bits used, reserved and next free."""
    added = {ch.name: ch for ch in changes if ch.kind == "macro-added"}
    arch = result.arch_map.get("x86_64") or (result.arches[0] if result.arches else None)
    if arch is None:
        return []
    out: list[Finding] = []
    for family in arch.families:
        new = [n for n in family.members if n in added]
        if family.kind != "bits" or not new or family.used_mask is None:
            continue
        first = added[new[0]]
        patch, path, line = locator.header(first.header, first.line, first.name)
        reserved = (f", reserved: {bit_ranges(family.reserved_mask)}"
                    if family.reserved_mask else "")
        out.append(Finding("abi-family", "info", patch, path, line,
                           f"{family.prefix} bits now used: {bit_ranges(family.used_mask)}"
                           f"{reserved}, next free: {_next_free(family)}"))
    return out
