"""Values passed between the ABI engine's stages: macro definitions and the type environment.

``preprocess``/``parse`` produce ``Define``s and a ``TypeEnv``;
``macros`` expands and evaluates the defines against that environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Define:
    """One ``#define`` seen by the preprocessor (from ``cpp -dD``), in the order seen."""

    name: str
    params: tuple[str, ...] | None  # None: object-like; ("x",) or ("x", "...") function-like
    body: str  # replacement list, whitespace folded
    header: str  # relative to xen/include/public/, or "" for predefined/command-line/stdint
    line: int


@dataclass(frozen=True)
class IntType:
    """An integer type of the target: its size in bytes and signedness."""

    size: int
    signed: bool

    @property
    def bits(self) -> int:
        return self.size * 8


class TypeEnv(Protocol):
    """What the macro evaluator may ask about the target's types (one arch, one profile)."""

    arch: str

    def int_type(self, spelling: str) -> IntType | None:
        """The integer type SPELLING names ("unsigned long", "uint64_t", "xen_ulong_t",
        "domid_t", "enum foo"), or None when it is not an integer type."""

    def sizeof(self, spelling: str) -> int | None:
        """sizeof(SPELLING) for any complete type ("struct start_info", "xen_pfn_t",
        "char *", "uint32_t[4]"), or None when unknown."""

    def alignof(self, spelling: str) -> int | None:
        """_Alignof(SPELLING), or None when unknown."""

    def enumerator(self, name: str) -> int | None:
        """The value of enumeration constant NAME, or None."""

    def offsetof(self, spelling: str, designator: str) -> int | None:
        """offsetof(SPELLING, DESIGNATOR) in bytes (C11 7.19p3, gcc's ``__builtin_offsetof``):
        SPELLING a struct or union type, DESIGNATOR a member-designator such as "a",
        "a.b", "a[3]", "a.b[2].c" (indexes only into arrays; any index, as gcc and
        clang compute it); None when unknown, for a bit-field or through a pointer."""

    def sizeof_member(self, spelling: str, path: str) -> int | None:
        """sizeof the lvalue reached from an object of type SPELLING by PATH, a chain of
        ".m" (member m) and "[i]" (element i of an array, or what a pointer points to),
        so ``sizeof(((struct s *)0)->ring[0])`` is ``sizeof_member("struct s *",
        "[0].ring[0]")`` and "" is SPELLING itself; None when unknown, for a bit-field
        (C11 6.5.3.4p1) or an incomplete type."""
