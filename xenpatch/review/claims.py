"""Cross-series ABI claims: which new names, bits and values an unmerged series takes (pure).

A series under review changes the ABI from its base to its result
(``abi diff``).  What it adds claims something two series on the list cannot
both have once merged:

* ``name``: a new macro, type or enumerator name;
* ``bit``: a bit of a flag family (``SIF_``: bit 5), for each new member;
* ``value``: a value of a value family (``__HYPERVISOR_``: 43), for each
  new macro member;
* ``enumerator``: a value of an enumeration's family, for each new
  enumerator.

Two series in review at the same time that claim the same name, or the same
bit or value in the same family, collide as soon as both are merged; neither
review sees it alone (each applies to a base that has neither).  A claim is
open until its name appears in the base (the series, or a series taking it,
was merged) or a newer version of its series supersedes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..abi.diff import Change
from ..abi.model import AbiModel, ArchModel

KINDS = ("name", "bit", "value", "enumerator")
ADDED = ("macro-added", "type-added", "enumerator-added")


@dataclass(frozen=True)
class Claim:
    """One thing a series takes: KIND in FAMILY (empty for names) with KEY, through NAME."""

    kind: str  # one of KINDS
    family: str  # the family prefix ("SIF_"); "" for a name claim
    key: str  # the name, the bit number or the value (decimal)
    name: str  # the macro, type or enumerator the series adds
    header: str  # relative to xen/include/public/
    line: int

    @property
    def what(self) -> str:
        """The claimed thing in words: ``bit 5 of SIF_``, ``the name SIF_HVM_GHCB``."""
        if self.kind == "name":
            return f"the name {self.key}"
        if self.kind == "bit":
            return f"bit {self.key} of {self.family}"
        return f"value {self.key} of {self.family}"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "family": self.family, "key": self.key, "name": self.name,
                "header": self.header, "line": self.line}


@dataclass(frozen=True)
class SeriesRef:
    """Which series holds a claim, as a reviewer names it."""

    subject: str
    version: int
    message_id: str

    @property
    def label(self) -> str:
        return f'"{self.subject}" (v{self.version}, <{self.message_id}>)'


@dataclass(frozen=True)
class Conflict:
    """CLAIM of the series under review takes what OTHER's series already claims."""

    claim: Claim
    other: Claim
    holder: SeriesRef

    @property
    def message(self) -> str:
        if self.claim.kind == "name":
            return (f"{self.claim.name} is also added by {self.holder.label}, not yet merged; "
                    "only one of the two can be merged as it is")
        via = "" if self.other.name == self.claim.name else f" ({self.other.name})"
        return (f"{self.claim.name} takes {self.claim.what}, which {self.holder.label} also "
                f"takes{via}, not yet merged; whichever is merged second collides")


def _family_of(arch: ArchModel, name: str) -> tuple[str, str] | None:
    for family in arch.families:
        if name in family.members:
            return family.prefix, family.kind
    return None


def _bits(value: int) -> list[int]:
    return [i for i in range(value.bit_length()) if value >> i & 1] if value > 0 else []


def derive(changes: Iterable[Change], result: AbiModel) -> tuple[Claim, ...]:
    """The claims of a series whose ABI diff (base -> result) is CHANGES."""
    out: dict[tuple[str, str, str, str], Claim] = {}

    def add(claim: Claim) -> None:
        out.setdefault((claim.kind, claim.family, claim.key, claim.name), claim)

    for ch in changes:
        if ch.kind not in ADDED:
            continue
        add(Claim("name", "", ch.name, ch.name, ch.header, ch.line))
        if ch.kind == "type-added":
            continue
        arch = next((a for a in result.arches if a.arch in ch.arches), None)
        if arch is None:
            continue
        found = _family_of(arch, ch.name)
        value = _value(arch, ch)
        if found is None or value is None:
            continue
        prefix, kind = found
        if ch.kind == "enumerator-added":
            add(Claim("enumerator", prefix, str(value), ch.name, ch.header, ch.line))
        elif kind == "bits":
            for bit in _bits(value):
                add(Claim("bit", prefix, str(bit), ch.name, ch.header, ch.line))
        else:
            add(Claim("value", prefix, str(value), ch.name, ch.header, ch.line))
    return tuple(sorted(out.values(), key=lambda c: (c.header, c.line, KINDS.index(c.kind),
                                                     c.family, c.key)))


def _value(arch: ArchModel, ch: Change) -> int | None:
    if ch.kind == "macro-added":
        macro = arch.macro_map.get(ch.name)
        return macro.value if macro is not None else None
    return ch.new if isinstance(ch.new, int) else None


def conflicts(claims: Sequence[Claim],
              others: Iterable[tuple[Claim, SeriesRef]]) -> tuple[Conflict, ...]:
    """Each of CLAIMS that another open series (OTHERS: its claims) also holds."""
    held: dict[tuple[str, str, str], list[tuple[Claim, SeriesRef]]] = {}
    for claim, ref in others:
        held.setdefault(_slot(claim), []).append((claim, ref))
    out: list[Conflict] = []
    for claim in claims:
        for other, ref in held.get(_slot(claim), ()):
            out.append(Conflict(claim, other, ref))
    return tuple(out)


def _slot(claim: Claim) -> tuple[str, str, str]:
    # A bit or a value is the same slot whether a macro or an enumerator takes it.
    kind = "value" if claim.kind == "enumerator" else claim.kind
    return kind, claim.family, claim.key


def merged_names(base: AbiModel) -> frozenset[str]:
    """Every macro, type and enumerator name of BASE (a claim whose name is here ended)."""
    names: set[str] = set()
    for arch in base.arches:
        names.update(arch.macro_map)
        for t in arch.types:
            names.add(t.name)
            names.update(e.name for e in t.enumerators)
    return frozenset(names)
