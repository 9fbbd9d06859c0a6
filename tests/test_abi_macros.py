"""Macro expansion and C integer constant expressions: small inputs, checked against the compilers."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from xenpatch.abi import arch as arches
from xenpatch.abi.c.cdefs import Define, IntType, TypeEnv
from xenpatch.abi.c.cexpr import NotConstant, evaluate, tokenize
from xenpatch.abi.c.declare import Declarations
from xenpatch.abi.c.layout import TARGETS
from xenpatch.abi.c.macros import Undef, evaluate_macros, find_redefinitions
from xenpatch.abi.c.parse import parse
from xenpatch.abi.model import Macro

LP64 = ("x86_64", "arm64")


class Env:
    """A small TypeEnv: the fixed-width types, Xen's xen_ulong_t, the RECORDS and one enum."""

    def __init__(self, arch: str) -> None:
        self.arch = arch
        word = arches.get(arch).long_size
        ulong = 8 if arch in LP64 or arch.startswith("arm") else 4  # xen_ulong_t: 64-bit on arm
        self.ints = {"char": IntType(1, arches.get(arch).char_signed), "long": IntType(word, True),
                     "unsigned long": IntType(word, False), "uint8_t": IntType(1, False),
                     "uint16_t": IntType(2, False), "uint32_t": IntType(4, False),
                     "int32_t": IntType(4, True), "uint64_t": IntType(8, False),
                     "int64_t": IntType(8, True), "xen_ulong_t": IntType(ulong, False),
                     "enum e": IntType(4, False)}

    def int_type(self, spelling: str) -> IntType | None:
        return self.ints.get(spelling)

    def sizeof(self, spelling: str) -> int | None:
        if spelling in self.ints:
            return self.ints[spelling].size
        if spelling.endswith("*"):
            return 8 if self.arch in LP64 else 4
        if spelling.endswith("]"):
            elem = self.sizeof(spelling[:spelling.rindex("[")])
            return None if elem is None else elem * int(spelling[spelling.rindex("[") + 1:-1])
        return {"struct s": 12, "struct x_sring": 76,
                "struct t": 48 if self.arch in LP64 else 44}.get(spelling)

    def alignof(self, spelling: str) -> int | None:
        if spelling == "uint64_t" and self.arch == "x86_32":
            return 4  # C11 _Alignof on i386
        return {"struct s": 4}.get(spelling) or self.sizeof(spelling)

    def enumerator(self, name: str) -> int | None:
        return {"E_ONE": 1, "E_BIG": 0x80000000}.get(name)

    def offsetof(self, spelling: str, designator: str) -> int | None:
        found = self._walk(spelling, "." + designator, through_pointers=False)
        return None if found is None else found[0]

    def sizeof_member(self, spelling: str, path: str) -> int | None:
        found = self._walk(spelling, path, through_pointers=True)
        return None if found is None else self.sizeof(found[1])

    def _walk(self, spelling: str, path: str, through_pointers: bool) -> tuple[int, str] | None:
        offset = 0
        for name, index in re.findall(r"\.(\w+)|\[(-?\d+)\]", path):
            if name:
                if name not in MEMBERS.get(spelling, {}):
                    return None
                delta, spelling = MEMBERS[spelling][name]
                offset += delta
            elif spelling.endswith("]"):
                spelling = spelling[:spelling.rindex("[")]
                offset += int(index) * (self.sizeof(spelling) or 0)
            elif through_pointers and spelling.endswith("*"):
                spelling = spelling[:-1].strip()
            else:
                return None
        return offset, spelling


# The RECORDS below as the fake Env sees them: member -> (offset, type), the same on every arch.
MEMBERS = {
    "struct s": {"a": (0, "uint32_t"), "b": (4, "uint32_t"), "c": (8, "uint32_t")},
    "struct x_sring": {"req_prod": (0, "uint32_t"), "rsp_prod": (4, "uint32_t"),
                       "pad": (8, "uint8_t[56]"), "ring": (64, "struct s[1]")},
    "struct t": {"tag": (0, "uint8_t"), "arr": (4, "struct s[3]"), "next": (40, "struct s *")},
}
RECORDS = """
struct s { uint32_t a, b, c; };
struct x_sring { uint32_t req_prod, rsp_prod; uint8_t pad[56]; struct s ring[1]; };
struct t { uint8_t tag; struct s arr[3]; struct s *next; };
"""


PRELUDE = """
#include <stddef.h>
#include <stdint.h>
typedef unsigned long xen_ulong_t_x86;
#if defined(__arm__) || defined(__aarch64__)
typedef uint64_t xen_ulong_t;
#else
typedef unsigned long xen_ulong_t;
#endif
enum e { E_ONE = 1, E_BIG = 0x80000000 };
""" + RECORDS

DEFINES = [
    Define("xen_mk_ullong", ("x",), "x##ULL", "xen.h", 1),
    Define("xen_mk_ulong", ("x",), "((xen_ulong_t)x##UL)", "xen.h", 2),
    Define("PAIR", ("a", "b"), "((a) << 8 | (b))", "x.h", 3),
    Define("CAT", ("a", "b"), "a ## b", "x.h", 4),
    Define("VA", ("...",), "(0, ## __VA_ARGS__)", "x.h", 5),
    Define("ONE", None, "1", "x.h", 6),
    Define("HIDDEN", None, "HIDDEN + 1", "x.h", 7),
    # xenpatch/abi/include/stddef.h's, and the shape of __CONST_RING_SIZE in io/ring.h
    Define("offsetof", ("type", "member"), "__builtin_offsetof(type, member)", "", 0),
    Define("RING_SIZE", ("_s", "_sz"), "(((_sz) - offsetof(struct _s##_sring, ring)) / "
           "sizeof(((struct _s##_sring *)0)->ring[0]))", "x.h", 8),
]

# offsetof and sizeof of members reached from a null pointer, as gcc and clang fold them.
MEMBER_EXPRESSIONS = [
    "RING_SIZE(x, 4096)", "offsetof(struct t, arr[2].b)", "__builtin_offsetof(struct t, next)",
    "offsetof(struct x_sring, ring)", "offsetof(struct x_sring, ring[5])",
    "offsetof(struct t, arr[-1])", "offsetof(struct t, arr[1 + E_ONE].c)",
    "sizeof(((struct x_sring *)0)->ring[0])", "sizeof(((struct x_sring *)0)->ring)",
    "sizeof(*(struct t *)0)", "sizeof((*(struct t *)0).arr)", "sizeof(((struct t *)0)->next->c)",
    "sizeof(((struct t *)0)->arr->a)", "sizeof(*((struct t *)0)->arr)", "sizeof((struct t *)0)",
    "sizeof ((struct t *)8)->arr[1]", "sizeof(((struct t *)0)->next[3])",
    "sizeof(((struct x_sring *)0)->pad) * 2 + 1", "sizeof((((struct t *)0))->tag)",
]

# (expression, comment) — evaluated by us and by the real compilers for every arch.
EXPRESSIONS = [
    "(1U << 31)", "(1 << 31)", "(0xFF<<8)", "((xen_ulong_t)-1)", "(~0U)", "(~0UL)", "-1",
    "((uint32_t)~0 << 16)", "xen_mk_ullong(0x8000000000000000)", "xen_mk_ulong(1) << 40",
    "(-1 >> 1)", "(-7 / 2)", "(-7 % 2)", "(1 ? -1 : 0U)", "(0 ? 1/0 : 3)", "(-1 < 0U)",
    "(-1L < 0U)", "sizeof(struct s)", "sizeof(uint64_t)", "sizeof(char *)", "_Alignof(uint64_t)",
    "sizeof(uint32_t[4])", "'a'", "'\\xff'", "'\\0'", "'ab'", "PAIR(1, 2)", "CAT(0x, 1f)",
    "CAT(1, ULL)", "E_ONE", "E_BIG", "(E_BIG | 1)", "0x7FFFFFFF + 1", "4294967295",
    "2147483648", "0x80000000", "(int8_t_cast)", "((unsigned char)300)", "((signed char)200)",
    "(uint16_t)-1 + 1", "!5", "(3 && 0) || 2", "(5 ^ 3) & ~1", "0b101", "010", "ONE + ONE",
    "(unsigned long)-1 >> 63", "(long)0xFFFFFFFFUL", "(_Bool)4", "1LL << 62", "0xFFFFFFFFFFFFFFFF",
]


def our_value(expr: str, arch: str, env: TypeEnv | None = None) -> int | None:
    table = [*DEFINES, Define("X", None, expr, "t.h", 99)]
    return {m.name: m.value for m in evaluate_macros(table, env or Env(arch))}["X"]




def compiler_agrees(pairs: list[tuple[str, int]], arch: str, tmp: Path) -> list[str]:
    """The expressions whose value or sign the compiler disagrees with (by _Static_assert)."""
    cc = arches.get(arch).compiler
    if shutil.which(cc[0]) is None:
        pytest.skip(f"{cc[0]} not installed")
    lines = [PRELUDE] + [f"#define {d.name}{'(' + ','.join(d.params) + ')' if d.params else ''}"
                         f" {d.body}" for d in DEFINES if d.header]
    for i, (expr, value) in enumerate(pairs):
        literal = f"{value}ULL" if value >= 0 else f"({value + 1}LL - 1)"
        lines.append(f"_Static_assert(({expr}) == {literal} && (({expr}) < 0) == ({int(value < 0)}),"
                     f" \"{i}\");")
    src = tmp / f"probe_{arch}.c"
    src.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([*cc, "-std=gnu11", "-fsyntax-only", "-w", str(src)],
                          capture_output=True, text=True)
    bad = []
    for line in proc.stderr.splitlines():
        if "static assertion failed" in line or "static_assert failed" in line:
            index = int(line.rsplit('"', 2)[-2])
            bad.append(pairs[index][0])
    assert proc.returncode == 0 or bad, proc.stderr
    return bad


@pytest.mark.parametrize("arch", arches.NAMES)
def test_values_agree_with_the_compiler(arch: str, tmp_path: Path) -> None:
    pairs = [(e, v) for e in EXPRESSIONS if (v := our_value(e, arch)) is not None]
    # Not constants: an unknown name; shifts by the width or more on 32-bit longs (C99 6.5.7:
    # undefined) — xen_ulong_t is 64-bit on arm32 (arch-arm.h), 32-bit on x86_32.
    none = {"(int8_t_cast)"} | ({"(unsigned long)-1 >> 63"} if arch not in LP64 else set()) \
        | ({"xen_mk_ulong(1) << 40"} if arch == "x86_32" else set())
    assert {e for e in EXPRESSIONS if our_value(e, arch) is None} == none
    assert compiler_agrees(pairs, arch, tmp_path) == []


def test_target_types_make_the_difference() -> None:
    assert our_value("((xen_ulong_t)-1)", "x86_64") == 2**64 - 1
    assert our_value("((xen_ulong_t)-1)", "x86_32") == 2**32 - 1
    assert our_value("((xen_ulong_t)-1)", "arm32") == 2**64 - 1
    assert our_value("(1 << 31)", "x86_64") == -2**31
    assert our_value("(1U << 31)", "x86_64") == 2**31
    assert our_value("'\\xff'", "x86_64") == -1 and our_value("'\\xff'", "arm64") == 255
    assert our_value("(-1L < 0U)", "x86_64") == 1 and our_value("(-1L < 0U)", "x86_32") == 0
    assert our_value("sizeof(char *)", "arm32") == 4 and our_value("sizeof(char *)", "arm64") == 8


@pytest.mark.parametrize("expr", ['"str"', "1.5", "(void *)0", "unknown_name", "1 / 0", "PAIR",
                                  "1 << 32", "(1, 2)", "sizeof(struct nope)", "HIDDEN", "(", ""])
def test_not_integer_constants(expr: str) -> None:
    assert our_value(expr, "x86_64") is None


@pytest.mark.parametrize("arch", arches.NAMES)
def test_offsetof_and_member_sizes_agree_with_the_compiler(arch: str, tmp_path: Path) -> None:
    values = {e: our_value(e, arch) for e in MEMBER_EXPRESSIONS}
    assert [e for e, v in values.items() if v is None] == []
    assert compiler_agrees([(e, v) for e, v in values.items() if v is not None], arch, tmp_path) == []


def test_offsetof_and_member_sizes() -> None:
    assert our_value("RING_SIZE(x, 4096)", "x86_64") == (4096 - 64) // 12
    assert our_value("offsetof(struct t, arr[2].b)", "arm32") == 4 + 2 * 12 + 4
    assert our_value("offsetof(struct t, arr[-1])", "x86_32") == 2**32 - 8  # size_t wraps
    assert our_value("sizeof((struct t *)0)", "x86_32") == 4
    assert our_value("sizeof(((struct t *)0)->next->c)", "x86_64") == 4
    assert our_value("sizeof(*(struct t *)0)", "arm64") == 48


@pytest.mark.parametrize("expr", [
    "((struct t *)0)->tag", "*(struct t *)0", "((struct t *)0)->arr[0].a + 1", "(struct t *)0",
    "(long)(struct t *)0", "(long)((struct t *)0)->tag", "((struct t *)0) == 0",
    "sizeof(((struct t *)0)->tag + 1)", "sizeof(((struct t *)0)->nope)",
    "sizeof(((struct t *)0)->tag.x)", "sizeof(((struct t *)0)->tag[0])",
    "sizeof(((struct t *)0)->arr.a)", "sizeof(((struct t *)0)->0)", "sizeof(1[2])",
    "sizeof((struct t *)0->tag)", "sizeof(((struct t *)0)->arr[(struct t *)0])",
    "offsetof(struct t, next[1])", "offsetof(struct t, nope)", "offsetof(struct t, arr.a)",
    "offsetof(struct t *, tag)", "offsetof(struct nope, a)", "offsetof(uint32_t, a)",
    "offsetof(struct t, )", "__builtin_offsetof(struct t, tag", "offsetof(struct t, arr[1)",
    "_Alignof(((struct t *)0)->tag)", "sizeof(((struct t *)unknown)->tag)",
])
def test_not_member_constants(expr: str) -> None:
    assert our_value(expr, "x86_64") is None


def declarations(arch: str) -> Declarations:
    """The real TypeEnv for RECORDS (with PRELUDE's enum and a bit-field) on ARCH."""
    stdint = ("typedef unsigned char uint8_t; typedef unsigned int uint32_t;"
              " typedef unsigned long long uint64_t;")
    d = Declarations(TARGETS[arch], lambda f: "t.h")
    more = "enum e { E_ONE = 1, E_BIG = 0x80000000 }; struct bits { uint32_t x:3, y:5; uint8_t z; };"
    d.visit(parse(stdint + RECORDS + more, "t.h"))
    return d


@pytest.mark.parametrize("arch", arches.NAMES)
def test_declarations_resolve_members_as_the_compiler(arch: str, tmp_path: Path) -> None:
    env = declarations(arch)
    values = {e: our_value(e, arch, env) for e in MEMBER_EXPRESSIONS}
    assert [e for e, v in values.items() if v is None] == []
    assert values == {e: our_value(e, arch) for e in MEMBER_EXPRESSIONS}  # the fake is right
    assert compiler_agrees([(e, v) for e, v in values.items() if v is not None], arch, tmp_path) == []
    # C11 6.5.3.4p1, 7.19p3: no sizeof or offsetof of a bit-field; members of pointers only
    # through the pointer; the uint8_t after the bit-fields is a member like any other.
    assert env.offsetof("struct bits", "x") is None and env.sizeof_member("struct bits", ".y") is None
    assert env.offsetof("struct bits", "z") == 1 and env.sizeof_member("struct bits", ".z") == 1
    assert env.offsetof("struct t", "next[0]") is None
    assert env.sizeof_member("struct t *", "[0].next[0].c") == 4
    assert env.sizeof_member("struct t", "") == env.sizeof("struct t")
    assert env.offsetof("struct t", "arr [ 2 ] . b") == 32 and env.offsetof("struct t", "arr]") is None


def test_random_expressions_agree_with_gcc(tmp_path: Path) -> None:
    """Random trees of constants (with suffixes), casts, unary and binary operators: gcc -m64 and
    -m32 must compute what we compute (the seed is fixed, so a failure reproduces)."""
    rng = random.Random(20261127)
    leaves = ["0", "1", "7", "31", "255", "0x7fffffff", "0x80000000", "0xffffffffU", "1U", "2L",
              "3UL", "1LL", "0x8000000000000000ULL", "-1", "'z'", "E_ONE", "E_BIG", "sizeof(struct s)"]
    binary = ["+", "-", "*", "&", "|", "^", "<", ">=", "==", "!=", "&&", "||"]
    casts = ["(uint8_t)", "(uint16_t)", "(int32_t)", "(uint64_t)", "(long)", "(unsigned long)",
             "(xen_ulong_t)", "(signed char)"]

    def gen(depth: int) -> str:
        if depth == 0 or rng.random() < 0.2:
            return rng.choice(leaves)
        roll = rng.random()
        if roll < 0.15:
            return f"({rng.choice(['-', '~', '!'])}{gen(depth - 1)})"
        if roll < 0.3:
            return f"({rng.choice(casts)}{gen(depth - 1)})"
        if roll < 0.4:
            return f"({gen(depth - 1)} ? {gen(depth - 1)} : {gen(depth - 1)})"
        if roll < 0.5:
            return f"({gen(depth - 1)} {rng.choice(['<<', '>>'])} {rng.randrange(0, 31)})"
        return f"({gen(depth - 1)} {rng.choice(binary)} {gen(depth - 1)})"

    exprs = [gen(4) for _ in range(300)]
    for arch in ("x86_64", "x86_32"):
        pairs = [(e, v) for e in exprs if (v := our_value(e, arch)) is not None]
        assert len(pairs) > 250
        assert compiler_agrees(pairs, arch, tmp_path) == []


def test_expansion_rules() -> None:
    env = Env("x86_64")
    table = [Define("f", ("x",), "x + f(x)", "a.h", 1),  # no recursion: f is hidden in its body
             Define("g", None, "f", "a.h", 2),  # a function-like name at the end, then rescanned
             Define("h", None, "g(2)", "a.h", 3),
             Define("STR", ("x",), "#x", "a.h", 4),
             Define("S", None, "STR(a \"b\")", "a.h", 5)]
    found = {m.name: m for m in evaluate_macros(table, env)}
    assert found["h"].value is None  # 2 + f(2): f stays an identifier, not a constant
    assert found["S"].value is None and found["S"].expr == 'STR(a "b")'
    assert sorted(found) == ["S", "g", "h"]  # function-like macros are no Macros
    assert tokenize("a##b 0x1FULL 'x'")[1].text == "##"


def test_only_public_headers_become_macros() -> None:
    env = Env("x86_64")
    found = evaluate_macros([Define("__SIZEOF_LONG__", None, "8", "", 0),
                             Define("W", None, "__SIZEOF_LONG__ * 8", "xen.h", 10)], env)
    assert found == (Macro("W", 64, "__SIZEOF_LONG__ * 8", "xen.h", 10),)


def test_later_definition_wins_and_undef_removes() -> None:
    env = Env("x86_64")
    table: list[Define | Undef] = [Define("A", None, "1", "a.h", 1), Define("A", None, "2", "b.h", 5),
             Define("B", None, "1", "a.h", 2), Undef("B", "a.h", 3)]
    assert evaluate_macros(table, env) == (Macro("A", 2, "2", "b.h", 5),)


def test_redefinitions() -> None:
    env = Env("x86_64")
    table: list[Define | Undef] = [
        Define("A", None, "1", "a.h", 1), Define("A", None, "(2)", "b.h", 5),
        Define("B", None, "1", "a.h", 2), Undef("B", "a.h", 3), Define("B", None, "7", "a.h", 4),
        Define("C", None, "4", "a.h", 6), Define("C", None, "(1<<2)", "c.h", 9),
        Define("D", None, "4", "a.h", 7), Define("D", None, "4", "a.h", 7)]
    # B: #undef first (intentional, cpp is silent); C: same value; D: the same line seen twice.
    assert find_redefinitions(table, env) == (Macro("A", 1, "1", "a.h", 1),)


def test_evaluate_raises_on_garbage() -> None:
    with pytest.raises(NotConstant):
        evaluate(tokenize("1 +"), Env("x86_64"))
