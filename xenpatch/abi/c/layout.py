"""C types and their layout on Xen's four targets: sizes, ABI alignment, offsets, bit-fields.

Pure: no pycparser here.  The rules are the ELF psABIs the compilers
implement, and each is checked against gcc/clang by the compiler-agreement
test (tests/test_abi_compiler.py):

* i386 System V psABI: ``long long`` and ``double`` are 4-aligned inside
  records, and C11 ``_Alignof`` says 4 for them too (gcc >= 8, PR52023).
* x86-64 System V psABI, AAPCS64: natural alignment, LP64.
* AAPCS (arm32, armv7a-linux-gnueabihf): 64-bit types 8-aligned, plain
  ``char`` unsigned, ILP32.
* Bit-fields (all four, the psABIs' common rule as gcc implements it): a
  bit-field is placed at the next free bit unless it would straddle a
  boundary of a unit of its declared type's size and alignment, in which
  case it starts at the next such boundary; ``:0`` moves to the next
  boundary of its type.  Unnamed (and ``:0``) bit-fields do not raise the
  record's alignment on x86 (i386/x86-64 psABI), but do on arm32 and arm64
  (AAPCS/AAPCS64: the container's alignment counts; measured with clang).
* Enums: ``int``/``unsigned int`` sized unless a value needs 64 bits
  (gcc's rule; Linux targets do not use short enums).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arch import ARCHES, Arch
from ..model import Field
from .cdefs import IntType


@dataclass(frozen=True)
class Target:
    """The data model of one arch: base type sizes and alignments."""

    arch: str
    long_size: int
    pointer_size: int
    llong_align: int  # also double's
    char_signed: bool
    long_double: tuple[int, int]  # size, align
    unnamed_bitfields_align: bool  # unnamed/zero-width bit-fields raise the record's alignment
    aligned_default: int  # __attribute__((aligned)) without a number (``Arch.aligned_default``)

    @classmethod
    def of(cls, arch: Arch) -> Target:
        """The data model of ARCH (``xenpatch.abi.arch``)."""
        return cls(arch.name, arch.long_size, arch.pointer_size, arch.llong_align,
                   arch.char_signed, arch.long_double, arch.unnamed_bitfields_align,
                   arch.aligned_default)

    def base(self, names: tuple[str, ...]) -> Scalar | None:
        """The arithmetic type a list of type-specifier keywords names."""
        words = [w for w in names if w not in ("signed", "unsigned", "int")] or ["int"]
        unsigned = "unsigned" in names
        key = " ".join(words)
        if key == "char":
            signed = not unsigned and ("signed" in names or self.char_signed)
            return Scalar(" ".join(names), 1, 1, signed)
        sizes = {"short": (2, 2), "int": (4, 4), "long": (self.long_size, self.long_size),
                 "long long": (8, self.llong_align), "_Bool": (1, 1)}
        if key in sizes:
            size, align = sizes[key]
            return Scalar(" ".join(names), size, align, not unsigned and key != "_Bool")
        floats = {"float": (4, 4), "double": (8, self.llong_align),
                  "long double": self.long_double}
        if key in floats:
            size, align = floats[key]
            return Scalar(" ".join(names), size, align, None)
        return None


TARGETS = {a.name: Target.of(a) for a in ARCHES}


class CType:
    """A C type of the target.  ``size`` is None for incomplete types."""

    size: int | None
    align: int


@dataclass(eq=False)
class Scalar(CType):
    name: str
    size: int | None
    align: int
    signed: bool | None  # None: floating point

    @property
    def int_type(self) -> IntType | None:
        return None if self.signed is None else IntType(self.size or 0, self.signed)


@dataclass(eq=False)
class Void(CType):
    size: int | None = None
    align: int = 1


@dataclass(eq=False)
class Pointer(CType):
    target: CType
    size: int | None
    align: int


@dataclass(eq=False)
class Function(CType):
    size: int | None = None
    align: int = 1


@dataclass(eq=False)
class Array(CType):
    elem: CType
    count: int | None  # None: flexible / unknown bound

    @property
    def size(self) -> int | None:  # type: ignore[override]
        if self.count is None or self.elem.size is None:
            return None
        return self.elem.size * self.count

    @property
    def align(self) -> int:  # type: ignore[override]
        return self.elem.align


@dataclass(eq=False)
class Aligned(CType):
    """A type with ``__attribute__((aligned(N)))`` (Xen's uint64_aligned_t)."""

    base: CType
    min_align: int

    @property
    def size(self) -> int | None:  # type: ignore[override]
        return self.base.size

    @property
    def align(self) -> int:  # type: ignore[override]
        return max(self.base.align, self.min_align)


@dataclass(eq=False)
class Enum(CType):
    tag: str | None
    size: int | None = None
    align: int = 4
    signed: bool = False
    enumerators: tuple[tuple[str, int], ...] = ()

    @property
    def int_type(self) -> IntType:
        return IntType(self.size or 4, self.signed)


@dataclass(eq=False)
class Record(CType):
    kind: str  # "struct" | "union"
    tag: str | None
    size: int | None = None
    align: int = 1
    fields: tuple[Field, ...] = ()  # offsets relative to this record
    members: dict[str, tuple[int, CType]] = field(default_factory=dict)  # name -> (offset, type)


@dataclass(frozen=True)
class Member:
    """A member declaration to lay out: name ("" unnamed), type, spelling, bit width."""

    name: str
    ctype: CType
    spelling: str
    bits: int | None = None  # bit-field width
    inline: bool = False  # an anonymous (untagged) record type written in place


def _round_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def shift(fields: tuple[Field, ...], delta: int) -> tuple[Field, ...]:
    """FIELDS moved DELTA bytes (for records written inline in another)."""
    if not delta:
        return fields
    # The fields of an array's elements (elem_size set) stay relative to the element.
    return tuple(Field(f.name, f.type, f.offset + delta, f.size,
                       None if f.bit_offset is None else f.bit_offset + 8 * delta,
                       f.bit_size, f.elem_size,
                       f.fields if f.elem_size is not None else shift(f.fields, delta))
                 for f in fields)


def _field(m: Member, offset: int, size: int, bit: int | None = None) -> Field:
    elem = None
    if isinstance(m.ctype, Array) and not m.ctype.count:
        elem = m.ctype.elem.size
    inner: tuple[Field, ...] = ()
    if m.inline and isinstance(m.ctype, Record):
        inner = shift(m.ctype.fields, offset)
    elif m.inline and isinstance(m.ctype, Array):
        record = element_record(m.ctype)
        if record is not None:  # an array of inline records: its elements' fields
            elem, inner = record.size, record.fields
    return Field(m.name, m.spelling, offset, size,
                 bit, m.bits if m.bits is not None else None, elem, inner)


def element_record(array: Array) -> Record | None:
    """The record an array (of arrays) of records is made of, else None."""
    elem: CType = array
    while isinstance(elem, (Array, Aligned)):
        elem = elem.elem if isinstance(elem, Array) else elem.base
    return elem if isinstance(elem, Record) else None


def _member_size(m: Member) -> int:
    if isinstance(m.ctype, Array) and not m.ctype.count:
        return 0  # flexible or [0] array member
    if m.ctype.size is None:
        raise LayoutError(f"member {m.name or '(anonymous)'} has incomplete type {m.spelling}")
    return m.ctype.size


class LayoutError(Exception):
    """A record that cannot be laid out (incomplete member type, bad bit-field)."""


def lay_out(record: Record, members: list[Member], target: Target) -> None:
    """Fill RECORD's size, alignment and fields (the module docstring's rules)."""
    pos = 0  # bits
    align = 1
    end = 0
    out: list[Field] = []
    for m in members:
        if m.bits is not None:
            pos, align = _place_bitfield(record, m, pos, align, out, target)
            end = max(end, pos)
            continue
        size = _member_size(m)
        a = m.ctype.align
        start = 0 if record.kind == "union" else _round_up(pos, a * 8)
        out.append(_field(m, start // 8, size))
        if m.name:
            record.members[m.name] = (start // 8, m.ctype)
        elif m.inline and isinstance(m.ctype, Record):
            for name, (off, t) in m.ctype.members.items():
                record.members[name] = (start // 8 + off, t)
        align = max(align, a)
        pos = start + size * 8
        end = max(end, pos)
    record.align = align
    record.size = _round_up((end + 7) // 8, align)
    record.fields = tuple(out)


def _place_bitfield(record: Record, m: Member, pos: int, align: int,
                    out: list[Field], target: Target) -> tuple[int, int]:
    t = m.ctype.base if isinstance(m.ctype, Aligned) else m.ctype
    if not isinstance(t, (Scalar, Enum)) or t.size is None:
        raise LayoutError(f"bit-field {m.name} of non-integer type {m.spelling}")
    bits = m.bits or 0
    unit, unit_align = t.size * 8, m.ctype.align * 8
    if record.kind == "union":
        pos = 0
    if m.name or target.unnamed_bitfields_align:
        align = max(align, m.ctype.align)
    if bits == 0:
        return (_round_up(pos, unit_align) if record.kind != "union" else 0), align
    if bits > unit:
        raise LayoutError(f"bit-field {m.name} wider than its type {m.spelling}")
    if pos % unit_align + bits > unit:
        pos = _round_up(pos, unit_align)
    out.append(_field(m, pos // 8, t.size, pos))
    return pos + bits, align


def enum_type(enum: Enum, values: list[tuple[str, int]], target: Target) -> None:
    """Fill ENUM's size and signedness from its values (gcc: int, unsigned int, else 64-bit)."""
    lo = min((v for _, v in values), default=0)
    hi = max((v for _, v in values), default=0)
    if lo < 0:
        fits = lo >= -(1 << 31) and hi < (1 << 31)
        enum.signed = True
    else:
        fits = hi < (1 << 32)
        enum.signed = False
    enum.size = 4 if fits else 8
    enum.align = 4 if fits else target.llong_align
    enum.enumerators = tuple(values)
