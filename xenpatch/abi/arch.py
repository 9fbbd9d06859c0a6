"""The arches xenpatch knows: one registry of each target's data model, predefines and compiler.

Every fact about an arch is written here once and read by name from here:
the configuration's and the commands' arch lists, the layout rules'
data model (``abi.c.layout.Target``), the macro evaluator's ``long`` and
``char``, cpp's predefined macros (``abi.c.preprocess``), the path rule of
``applies_to`` (family and width) and the compiler the agreement
tests and ``bench/`` ask (``tests/probe.py``).  Nothing elsewhere guesses a
property from an arch's name.

The data models are the ELF psABIs the compilers implement (i386 System V,
x86-64 System V, AAPCS, AAPCS64; see ``abi/c/layout.py``), each value
measured with the compiler named in ``compiler`` (``-dM -E`` for the
predefines, ``_Static_assert`` for sizes and alignments).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

Define = tuple[str, str]

# What every target's compiler predefines that the headers may test for
# (gcc 12 / clang 14 ``-dM -E``; little endian ELF everywhere).
_COMMON: tuple[Define, ...] = (
    ("__GNUC__", "12"), ("__GNUC_MINOR__", "2"), ("__GNUC_PATCHLEVEL__", "0"),
    ("__CHAR_BIT__", "8"), ("__SIZEOF_SHORT__", "2"), ("__SIZEOF_INT__", "4"),
    ("__SIZEOF_LONG_LONG__", "8"), ("__SIZEOF_FLOAT__", "4"), ("__SIZEOF_DOUBLE__", "8"),
    ("__ORDER_LITTLE_ENDIAN__", "1234"), ("__ORDER_BIG_ENDIAN__", "4321"),
    ("__ORDER_PDP_ENDIAN__", "3412"), ("__BYTE_ORDER__", "__ORDER_LITTLE_ENDIAN__"),
    ("__ELF__", "1"),
)
_ILP32: tuple[Define, ...] = (("__SIZEOF_LONG__", "4"), ("__SIZEOF_POINTER__", "4"),
                              ("__SIZEOF_SIZE_T__", "4"))
_LP64: tuple[Define, ...] = (("__SIZEOF_LONG__", "8"), ("__SIZEOF_POINTER__", "8"),
                             ("__SIZEOF_SIZE_T__", "8"), ("__LP64__", "1"), ("_LP64", "1"))


@dataclass(frozen=True)
class Arch:
    """One target: its name, where its headers live, its data model, predefines and compiler."""

    name: str  # "x86_32": the name in configs, the model and the command line
    family: str  # "x86" | "arm": what arch-F/ and arch-F.h in a header path name
    width: str  # "32" | "64": what the _NN of xen-F_NN.h / arch-F_NN.h names
    long_size: int  # also the pointer's and size_t's size (ILP32 or LP64)
    llong_align: int  # long long and double inside records and for _Alignof
    char_signed: bool  # plain char
    long_double: tuple[int, int]  # size, align
    unnamed_bitfields_align: bool  # unnamed/zero-width bit-fields raise the record's alignment
    # ``__attribute__((aligned))`` without a number: "the largest alignment which is
    # ever used for any data type on the target machine" (gcc manual, Common Type
    # Attributes), i.e. __BIGGEST_ALIGNMENT__: 16 on i386/x86-64 (SSE) and AArch64,
    # 8 on arm32 (clang --target armv7a-linux-gnueabihf -dM -E; measured).
    aligned_default: int
    defines: tuple[Define, ...]  # what the target's compiler predefines that headers test
    compiler: tuple[str, ...]  # the compiler (and flags) that builds for the target

    @property
    def pointer_size(self) -> int:
        return self.long_size


ARCHES: tuple[Arch, ...] = (
    Arch("x86_32", "x86", "32", 4, 4, True, (12, 4), False, 16,
         _COMMON + _ILP32 + (("__i386__", "1"), ("__i386", "1"),
                             ("__SIZEOF_LONG_DOUBLE__", "12")),
         ("gcc", "-m32")),
    Arch("x86_64", "x86", "64", 8, 8, True, (16, 16), False, 16,
         _COMMON + _LP64 + (("__x86_64__", "1"), ("__x86_64", "1"), ("__amd64__", "1"),
                            ("__amd64", "1"), ("__SIZEOF_LONG_DOUBLE__", "16")),
         ("gcc", "-m64")),
    Arch("arm32", "arm", "32", 4, 8, False, (8, 8), True, 8,
         _COMMON + _ILP32 + (("__arm__", "1"), ("__ARM_EABI__", "1"), ("__ARMEL__", "1"),
                             ("__ARM_ARCH", "7"), ("__ARM_ARCH_7A__", "1"),
                             ("__ARM_PCS_VFP", "1"), ("__CHAR_UNSIGNED__", "1"),
                             ("__SIZEOF_LONG_DOUBLE__", "8")),
         ("clang", "--target=armv7a-linux-gnueabihf", "-ffreestanding")),
    Arch("arm64", "arm", "64", 8, 8, False, (16, 16), True, 16,
         _COMMON + _LP64 + (("__aarch64__", "1"), ("__AARCH64EL__", "1"),
                            ("__ARM_ARCH", "8"), ("__ARM_64BIT_STATE", "1"),
                            ("__CHAR_UNSIGNED__", "1"), ("__SIZEOF_LONG_DOUBLE__", "16")),
         ("clang", "--target=aarch64-linux-gnu", "-ffreestanding")),
)
NAMES: tuple[str, ...] = tuple(a.name for a in ARCHES)
BY_NAME: Mapping[str, Arch] = {a.name: a for a in ARCHES}


def get(name: str) -> Arch:
    """The arch called NAME (KeyError for a name not in ``NAMES``)."""
    return BY_NAME[name]


# The arch families a public header path can name: arch-x86/, arch-x86_32.h,
# arch-x86/xen-x86_64.h, arch-arm.h, arch-arm/, arch-ppc.h, arch-riscv.h.
_ARCH_IN_PATH = re.compile(
    r"(?:^|/)(?:arch-([a-z0-9]+?)(?:_(32|64))?|xen-([a-z0-9]+)_(32|64))(?=[./]|$)")


def applies_to(header: str, arch: str) -> bool:
    """Whether HEADER's path lets it belong to ARCH: every ``arch-F`` / ``xen-F_NN`` part of
    the path must name ARCH's family F (x86, arm) and, when it has a width, ARCH's width."""
    target = BY_NAME[arch]
    for m in _ARCH_IN_PATH.finditer(header):
        named, bits = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if named != target.family or (bits and bits != target.width):
            return False
    return True
