"""The ABI model: frozen values describing what the compiler sees in the public headers.

This is the only view of the headers the rest of xenpatch has (pycparser
nodes never leave ``abi/``).  Header paths are relative to
``xen/include/public/``; fields keep declaration order (order is ABI).
JSON (``xenpatch-abi/1``, DESIGN.md "The ABI model") is written with sorted
keys and read back to an equal model (``from_json(to_json(m)) == m``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .arch import NAMES as ARCHES

SCHEMA = "xenpatch-abi/1"
PROFILES = ("tools", "guest", "guest-latest")


@dataclass(frozen=True)
class Field:
    """A member of a struct or union; ``fields`` is set for inline (anonymous) records and
    for arrays of records written in place (then relative to one element)."""

    name: str  # "" for an anonymous struct/union member
    type: str  # C spelling: "uint32_t", "char[32]", "struct foo", "union {...}"
    offset: int  # bytes from the start of the enclosing record
    size: int  # bytes; 0 for a flexible array member
    bit_offset: int | None = None  # bit-fields: bits from the start of the record
    bit_size: int | None = None
    # flexible array members and arrays of inline records: the size of one element
    elem_size: int | None = None
    # inline records: their fields; arrays of inline records: the element's fields, with
    # offsets relative to the element (path ``timers[].cmp``)
    fields: tuple[Field, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type,
                               "offset": self.offset, "size": self.size}
        if self.bit_size is not None:
            out["bit_offset"] = self.bit_offset
            out["bit_size"] = self.bit_size
        if self.elem_size is not None:
            out["elem_size"] = self.elem_size
        if self.fields:
            out["fields"] = [f.to_json() for f in self.fields]
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Field:
        return cls(name=d["name"], type=d["type"], offset=d["offset"], size=d["size"],
                   bit_offset=d.get("bit_offset"), bit_size=d.get("bit_size"),
                   elem_size=d.get("elem_size"),
                   fields=tuple(cls.from_json(f) for f in d.get("fields", ())))


def array_rank(spelling: str) -> int:
    """How many array dimensions a field's type spelling has (``struct {...}[3]``: 1)."""
    return spelling[spelling.rfind("}") + 1:].count("[")


@dataclass(frozen=True)
class Enumerator:
    name: str
    value: int


@dataclass(frozen=True)
class TypeInfo:
    """A named struct, union or enum (or a typedef of an anonymous one, under the typedef name)."""

    name: str  # "struct start_info", "union foo", "enum bar", "start_info_t", "enum xen.h:123"
    kind: str  # "struct" | "union" | "enum"
    size: int
    align: int
    header: str
    line: int
    fields: tuple[Field, ...] = ()
    enumerators: tuple[Enumerator, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "size": self.size, "align": self.align,
                               "header": self.header, "line": self.line}
        if self.kind == "enum":
            out["enumerators"] = [{"name": e.name, "value": e.value} for e in self.enumerators]
        else:
            out["fields"] = [f.to_json() for f in self.fields]
        return out

    @classmethod
    def from_json(cls, name: str, d: dict[str, Any]) -> TypeInfo:
        return cls(name=name, kind=d["kind"], size=d["size"], align=d["align"],
                   header=d["header"], line=d["line"],
                   fields=tuple(Field.from_json(f) for f in d.get("fields", ())),
                   enumerators=tuple(Enumerator(e["name"], e["value"])
                                     for e in d.get("enumerators", ())))

    def walk_fields(self) -> tuple[tuple[str, Field], ...]:
        """Every field with its dotted path (``console.domU.mfn``; ``timers[].cmp`` inside the
        elements of an array, one ``[]`` per dimension), depth first, in order."""
        out: list[tuple[str, Field]] = []

        def visit(prefix: str, fields: tuple[Field, ...]) -> None:
            for f in fields:
                path = f"{prefix}.{f.name}" if prefix and f.name else (f.name or prefix)
                out.append((path, f))
                if f.fields:
                    inner = path if f.name else prefix
                    if f.elem_size is not None:
                        inner += "[]" * array_rank(f.type)
                    visit(inner, f.fields)

        visit("", self.fields)
        return tuple(out)


@dataclass(frozen=True)
class Macro:
    """An object-like macro defined under public/; ``value`` is its integer value or None."""

    name: str
    value: int | None
    expr: str  # the replacement text as written (whitespace folded)
    header: str
    line: int


@dataclass(frozen=True)
class Family:
    """Macros (or enumerators) that share a prefix and a purpose: flag bits or enumerated values."""

    prefix: str  # "SIF_", "XEN_DOMCTL_CDF_", "__HYPERVISOR_"
    kind: str  # "bits" | "values"
    members: tuple[str, ...]  # in definition order
    used_mask: int | None = None  # bits: union of the members' bits
    reserved_mask: int | None = None  # bits: union of reserved masks (SIF_PM_MASK)
    masks: tuple[str, ...] = ()  # members that are masks (reserved or field masks)
    markers: tuple[str, ...] = ()  # "*_MAX"-style markers ("Used for ABI checking")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "members": list(self.members)}
        if self.kind == "bits":
            out["used_mask"] = self.used_mask
            out["reserved_mask"] = self.reserved_mask
        if self.masks:
            out["masks"] = list(self.masks)
        if self.markers:
            out["markers"] = list(self.markers)
        return out

    @classmethod
    def from_json(cls, prefix: str, d: dict[str, Any]) -> Family:
        return cls(prefix=prefix, kind=d["kind"], members=tuple(d["members"]),
                   used_mask=d.get("used_mask"), reserved_mask=d.get("reserved_mask"),
                   masks=tuple(d.get("masks", ())), markers=tuple(d.get("markers", ())))


@dataclass(frozen=True)
class HeaderFailure:
    header: str
    error: str  # one line


@dataclass(frozen=True)
class ArchModel:
    """Everything one arch's compiler sees in the public headers, for one profile."""

    arch: str
    headers: tuple[str, ...]  # headers that were parsed (sorted)
    failed: tuple[HeaderFailure, ...] = ()
    not_applicable: tuple[str, ...] = ()  # headers of other arches
    macros: tuple[Macro, ...] = ()  # sorted by name
    families: tuple[Family, ...] = ()  # sorted by prefix
    types: tuple[TypeInfo, ...] = ()  # sorted by name
    # Earlier definitions replaced by a later #define of the same name with another
    # value (macros.find_redefinitions), for abi-redefinition; sorted by name.
    redefined: tuple[Macro, ...] = ()

    @cached_property
    def macro_map(self) -> dict[str, Macro]:
        return {m.name: m for m in self.macros}

    @cached_property
    def type_map(self) -> dict[str, TypeInfo]:
        return {t.name: t for t in self.types}

    @cached_property
    def family_map(self) -> dict[str, Family]:
        return {f.prefix: f for f in self.families}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "headers": list(self.headers),
            "failed": [{"header": f.header, "error": f.error} for f in self.failed],
            "not_applicable": list(self.not_applicable),
            "macros": {m.name: {"value": m.value, "expr": m.expr, "header": m.header,
                                "line": m.line} for m in self.macros},
            "families": {f.prefix: f.to_json() for f in self.families},
            "types": {t.name: t.to_json() for t in self.types},
        }
        if self.redefined:
            out["redefined"] = [{"name": m.name, "value": m.value, "expr": m.expr,
                                 "header": m.header, "line": m.line} for m in self.redefined]
        return out

    @classmethod
    def from_json(cls, arch: str, d: dict[str, Any]) -> ArchModel:
        return cls(
            arch=arch,
            headers=tuple(d["headers"]),
            failed=tuple(HeaderFailure(f["header"], f["error"]) for f in d.get("failed", ())),
            not_applicable=tuple(d.get("not_applicable", ())),
            macros=tuple(Macro(name=n, value=m["value"], expr=m["expr"], header=m["header"],
                               line=m["line"]) for n, m in sorted(d.get("macros", {}).items())),
            families=tuple(Family.from_json(p, f) for p, f in sorted(d.get("families", {}).items())),
            types=tuple(TypeInfo.from_json(n, t) for n, t in sorted(d.get("types", {}).items())),
            redefined=tuple(Macro(m["name"], m["value"], m["expr"], m["header"], m["line"])
                            for m in d.get("redefined", ())),
        )


@dataclass(frozen=True)
class Source:
    tree: str | None = None  # the tree or header directory the model was read from
    rev: str | None = None  # the commit, when read from git
    profile: str = "tools"


@dataclass(frozen=True)
class AbiModel:
    """The ABI of one snapshot of the public headers, per arch."""

    source: Source
    arches: tuple[ArchModel, ...] = field(default_factory=tuple)

    @cached_property
    def arch_map(self) -> dict[str, ArchModel]:
        return {a.arch: a for a in self.arches}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "source": {"tree": self.source.tree, "rev": self.source.rev,
                       "profile": self.source.profile},
            "arches": {a.arch: a.to_json() for a in self.arches},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, indent=1) + "\n"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AbiModel:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema: {d.get('schema')!r})")
        src = d.get("source", {})
        arch_order = {a: i for i, a in enumerate(ARCHES)}
        arches = sorted(d["arches"].items(), key=lambda kv: (arch_order.get(kv[0], 99), kv[0]))
        return cls(source=Source(src.get("tree"), src.get("rev"), src.get("profile", "tools")),
                   arches=tuple(ArchModel.from_json(a, m) for a, m in arches))
