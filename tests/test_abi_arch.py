"""The arch registry (xenpatch/abi/arch.py) says what each arch's compiler says.

Its data model, its predefined macros and the default of a bare
``__attribute__((aligned))`` are checked against the compiler it names
(``Arch.compiler``): ``-dM -E`` for the macros, ``_Static_assert`` for the
rest; the layout engine's answer for a bare ``aligned`` is checked too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xenpatch import proc
from xenpatch.abi import arch as arches
from xenpatch.abi.c.declare import Declarations
from xenpatch.abi.c.layout import TARGETS
from xenpatch.abi.c.parse import parse

# The compilers' own version macros differ (clang says __GNUC__ 4); the headers get gcc 12's.
_VERSION = {"__GNUC__", "__GNUC_MINOR__", "__GNUC_PATCHLEVEL__"}


def _compiler(name: str) -> tuple[str, ...]:
    cc = arches.get(name).compiler
    if shutil.which(cc[0]) is None:
        pytest.skip(f"{cc[0]} not installed")
    return cc


@pytest.mark.parametrize("name", arches.NAMES)
def test_predefines_are_the_compilers(name: str, tmp_path: Path) -> None:
    cc = _compiler(name)
    empty = tmp_path / "empty.c"
    empty.write_text("")
    out = proc.run([*cc, "-dM", "-E", str(empty)], check=True).stdout
    theirs = dict(line.split(" ", 2)[1:] for line in out.splitlines()
                  if line.startswith("#define ") and line.count(" ") >= 2)
    ours = dict(arches.get(name).defines)
    assert {k: v for k, v in ours.items() if k not in _VERSION} == \
        {k: theirs.get(k) for k in ours if k not in _VERSION}
    assert theirs.get("__CHAR_UNSIGNED__") == ("1" if not arches.get(name).char_signed else None)


@pytest.mark.parametrize("name", arches.NAMES)
def test_data_model_is_the_compilers(name: str, tmp_path: Path) -> None:
    a = arches.get(name)
    checks = [
        f"sizeof(long) == {a.long_size}", f"sizeof(void *) == {a.pointer_size}",
        f"__builtin_offsetof(struct {{ char c; long long x; }}, x) == {a.llong_align}",
        f"__builtin_offsetof(struct {{ char c; double x; }}, x) == {a.llong_align}",
        f"((char)-1 < 0) == {int(a.char_signed)}",
        f"sizeof(long double) == {a.long_double[0]}", f"_Alignof(long double) == {a.long_double[1]}",
        f"__BIGGEST_ALIGNMENT__ == {a.aligned_default}",
        f"_Alignof(struct {{ char c; int __attribute__((aligned)) x; }}) == {a.aligned_default}",
    ]
    src = tmp_path / "model.c"
    src.write_text("".join(f'_Static_assert({c}, "{i}");\n' for i, c in enumerate(checks)))
    run = proc.run([*_compiler(name), "-std=gnu11", "-fsyntax-only", str(src)])
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("name", arches.NAMES)
def test_a_bare_aligned_is_the_arch_default(name: str) -> None:
    d = Declarations(TARGETS[name], lambda f: "t.h")
    d.visit(parse("typedef int __attribute__((aligned)) big_t; struct s { char c; big_t x; };",
                  "t.h"))
    assert d.types["struct s"].align == arches.get(name).aligned_default


def test_applies_to_reads_family_and_width() -> None:
    assert arches.applies_to("arch-x86/xen-x86_64.h", "x86_64")
    assert not arches.applies_to("arch-x86/xen-x86_64.h", "x86_32")
    assert [a.name for a in arches.ARCHES if arches.applies_to("arch-arm.h", a.name)] == \
        ["arm32", "arm64"]
