"""Layout rules with small inputs: bit-fields, x86_32 alignment, arm guest handles, flexible
arrays, anonymous members, enums, constant expressions and the TypeEnv the macro side uses.

Each expectation is what gcc -m32/-m64 and clang --target arm compute for the
same declarations (tests/test_abi_compiler.py checks that on the real tree).
"""

from __future__ import annotations

import pytest

from xenpatch.abi.arch import NAMES as ARCH_NAMES
from xenpatch.abi.arch import applies_to
from xenpatch.abi.c import preprocess
from xenpatch.abi.c.declare import Declarations, DeclareError
from xenpatch.abi.c.layout import TARGETS
from xenpatch.abi.c.parse import ParseFailure, SegmentParser, parse, rewrite_gnu

STDINT = """
typedef unsigned char uint8_t; typedef unsigned short uint16_t; typedef unsigned int uint32_t;
typedef signed char int8_t; typedef int int32_t;
typedef unsigned long long uint64_t; typedef long long int64_t;
"""


def declare(arch: str, text: str) -> Declarations:
    d = Declarations(TARGETS[arch], lambda f: "t.h" if f == "t.h" else "")
    d.visit(parse(STDINT + '\n# 1 "t.h"\n' + text, "t.h"))
    return d


def fields(d: Declarations, name: str) -> dict:
    return {path: f for path, f in d.types[name].walk_fields()}


def test_bitfields_share_and_start_new_units():
    d = declare("x86_64", """struct b {
        uint8_t state:4; uint8_t ptr:1; uint8_t dir:1; uint8_t df:1; uint8_t pad:1;
        uint8_t type; uint32_t addr:20; uint32_t more:20; uint16_t :0; uint8_t last:3; };""")
    f = fields(d, "struct b")
    assert [(f[n].bit_offset, f[n].bit_size) for n in ("state", "ptr", "dir", "df", "pad")] == \
        [(0, 4), (4, 1), (5, 1), (6, 1), (7, 1)]
    assert f["type"].offset == 1
    # addr would straddle bit 32 (16+20), so starts there; more likewise at 64
    assert (f["addr"].bit_offset, f["more"].bit_offset) == (32, 64)
    assert f["last"].bit_offset == 96  # :0 of uint16_t moves to the next 16-bit boundary
    assert (d.types["struct b"].size, d.types["struct b"].align) == (16, 4)


def test_unnamed_bitfields_raise_alignment_on_arm_only():
    text = """struct u { uint8_t a; uint64_t :3; };
        struct z { uint8_t a; uint64_t :0; uint8_t b; };"""
    got = {}
    for arch in ARCH_NAMES:
        d = declare(arch, text)
        u, z = d.types["struct u"], d.types["struct z"]
        got[arch] = (u.size, u.align, z.size, z.align, fields(d, "struct z")["b"].offset)
    # measured: gcc -m32/-m64, clang --target armv7a-linux-gnueabihf / aarch64-linux-gnu
    assert got == {"x86_32": (2, 1, 5, 1, 4), "x86_64": (2, 1, 9, 1, 8),
                   "arm32": (8, 8, 16, 8, 8), "arm64": (8, 8, 16, 8, 8)}


def test_x86_32_aligns_64_bit_types_to_4_unless_aligned_8():
    text = """struct s { uint32_t a; uint64_t b; };
        typedef uint64_t [[gnu::aligned(8)]] uint64_aligned_t;
        struct t { uint32_t a; uint64_aligned_t b; };
        struct v { uint32_t a; double d; };"""
    x32, x64, arm = declare("x86_32", text), declare("x86_64", text), declare("arm32", text)
    assert (fields(x32, "struct s")["b"].offset, x32.types["struct s"].size) == (4, 12)
    assert x32.types["struct s"].align == 4 and x32.alignof("uint64_t") == 4
    assert (fields(x32, "struct t")["b"].offset, x32.types["struct t"].align) == (8, 8)
    assert x32.alignof("uint64_aligned_t") == 8 and x32.sizeof("uint64_aligned_t") == 8
    assert fields(x32, "struct v")["d"].offset == 4
    assert (fields(x64, "struct s")["b"].offset, x64.types["struct s"].size) == (8, 16)
    assert (fields(arm, "struct s")["b"].offset, arm.types["struct s"].align) == (8, 8)


def test_gnu_attribute_rewrite_keeps_alignment():
    text = "typedef uint64_t __attribute__((__aligned__(8))) a8; int x __attribute__((unused));"
    assert rewrite_gnu(text) == "typedef uint64_t [[gnu::aligned(8)]] a8; int x ;"
    assert rewrite_gnu("__extension__ static __inline__ int f(void);") == \
        " static inline int f(void);"


def test_arm_guest_handle_union_is_8_bytes_on_arm32():
    text = """typedef uint64_t [[gnu::aligned(8)]] uint64_aligned_t;
        typedef union { char *p; unsigned long q; } __guest_handle_char;
        typedef union { char *p; uint64_aligned_t q; } __guest_handle_64_char;
        struct op { uint32_t cmd; __guest_handle_64_char buf; };"""
    arm32, arm64 = declare("arm32", text), declare("arm64", text)
    assert (arm32.types["__guest_handle_char"].size, arm64.types["__guest_handle_char"].size) \
        == (4, 8)
    h = arm32.types["__guest_handle_64_char"]
    assert (h.kind, h.size, h.align) == ("union", 8, 8)
    assert [f.type for f in h.fields] == ["char *", "uint64_aligned_t"]
    assert fields(arm32, "struct op")["buf"].offset == 8
    assert arm32.types["struct op"].size == 16


def test_flexible_and_zero_length_arrays_and_empty_structs():
    d = declare("x86_64", """struct f { uint32_t n; uint64_t data[]; };
        struct z { uint16_t n; uint8_t pad[0]; }; struct e { };""")
    data = fields(d, "struct f")["data"]
    assert (data.offset, data.size, data.elem_size, data.type) == (8, 0, 8, "uint64_t[]")
    assert d.types["struct f"].size == 8
    pad = fields(d, "struct z")["pad"]
    assert (pad.offset, pad.size, pad.elem_size) == (2, 0, 1)
    assert (d.types["struct e"].size, d.types["struct e"].align) == (0, 1)


def test_anonymous_members_and_nested_records():
    d = declare("x86_64", """typedef struct {
        uint32_t kind;
        union { struct { uint64_t mfn; uint32_t evtchn; } domU; uint64_t raw[2]; };
        struct inner { uint8_t a; } in;
        char magic[32];
        } info_t;""")
    f = fields(d, "info_t")
    assert (f["domU"].offset, f["domU.mfn"].offset, f["domU.evtchn"].offset) == (8, 8, 16)
    assert f["domU"].type == "struct {...}" and f["raw"].offset == 8
    assert f["in"].type == "struct inner" and f["in"].offset == 24
    assert f["magic"].type == "char[32]"
    assert "struct inner" in d.types  # a tagged record nested in another is a type of its own
    assert d.offsetof("info_t", "domU.evtchn") == 16 and d.offsetof("info_t", "raw") == 8


def test_enums_and_constant_expressions():
    d = declare("x86_32", """enum small { A = -1, B, C = 1U << 31 };
        enum big { D = 0x100000000ULL };
        enum { E = sizeof(uint64_t) * 2, F = (uint8_t)0x1ff, G = ~0U >> 28, H = -7 / 2 };
        struct arr { char s[(16 - 1) / 8 + 'a' - 96]; };""")
    small = d.types["enum small"]
    assert [(e.name, e.value) for e in small.enumerators] == [("A", -1), ("B", 0),
                                                              ("C", 2147483648)]
    assert (d.types["enum big"].size, d.types["enum big"].align) == (8, 4)
    anon = next(t for n, t in d.types.items() if n.startswith("enum t.h:"))
    assert [e.value for e in anon.enumerators] == [16, 255, 15, -3]
    assert d.types["struct arr"].size == 2
    assert d.enumerator("E") == 16 and d.enumerator("nope") is None


def test_type_env_answers_the_macro_side():
    d = declare("arm32", "typedef uint64_t xen_ulong_t; struct s { char c; }; enum e { X };")
    assert d.int_type("unsigned long").size == 4 and not d.int_type("unsigned long").signed
    assert d.int_type("char").signed is False  # plain char is unsigned on arm (AAPCS)
    assert declare("x86_64", "").int_type("char").signed is True
    assert d.int_type("xen_ulong_t").size == 8 and d.int_type("enum e").size == 4
    assert d.int_type("struct s") is None and d.int_type("char *") is None
    assert (d.sizeof("char *"), d.sizeof("uint32_t[4]"), d.sizeof("struct s")) == (4, 16, 1)
    assert d.alignof("long long") == 8 and d.sizeof("struct nosuch") is None
    assert d.sizeof("no_such_t") is None and d.sizeof("int (") is None


def test_errors_carry_file_and_line():
    with pytest.raises(ParseFailure) as e:
        parse('# 1 "t.h"\nstruct x { int a }\n;', "w.c")
    assert (e.value.file, e.value.line) == ("t.h", 1)
    with pytest.raises(DeclareError) as e2:
        declare("x86_64", "struct y { struct nowhere n; };")
    assert e2.value.file == "t.h" and "incomplete" in e2.value.message


def test_layout_changing_constructs_we_do_not_model_are_errors_not_guesses():
    for text in ("#pragma pack(4)\nstruct p { char c; int i; };",
                 "struct q { char c; int i; } __attribute__((packed));",
                 "struct __attribute__((packed)) r { char c; int i; };"):
        with pytest.raises((DeclareError, ParseFailure)):
            declare("x86_64", rewrite_gnu(text))


def test_aligned_record():
    d = declare("x86_32", rewrite_gnu("struct __attribute__((aligned(16))) s { int a; };"))
    assert (d.types["struct s"].size, d.types["struct s"].align) == (16, 16)


def test_headers_of_other_arches_are_not_applicable():
    assert applies_to("arch-x86/xen-mca.h", "x86_32")
    assert not applies_to("arch-x86/xen-x86_32.h", "x86_64")
    assert not applies_to("arch-x86_64.h", "x86_32")
    assert not applies_to("arch-arm/hvm/save.h", "x86_64")
    assert applies_to("arch-arm.h", "arm32") and applies_to("arch-arm.h", "arm64")
    assert not any(applies_to("arch-riscv.h", a) for a in ("x86_64", "arm64"))
    assert applies_to("xen-compat.h", "arm32")


def test_unsafe_includes_are_found_before_cpp_runs():
    files = {"xen.h": b"", "io/a.h": b'#include "../xen.h"\n', "io/b.h": b'#include "../../x.h"\n',
             "c.h": b"#include </etc/passwd>\n", "d.h": b"#  include FOO\n"}
    bad = preprocess.unsafe_includes(files)
    assert set(bad) == {"io/b.h", "c.h", "d.h"}
    assert bad["io/b.h"].startswith("io/b.h:1: unsafe include")


def test_input_nested_too_deeply_is_a_parse_failure():
    with pytest.raises(ParseFailure) as e:
        SegmentParser().parse('# 1 "t.h"\nint x = ' + "(" * 5000 + "1" + ")" * 5000 + ";", "w.c")
    assert e.value.file == "t.h" and "too deeply" in e.value.message


def test_segment_parser_reuses_segments_only_in_the_same_typedef_context():
    w = preprocess.WRAPPER
    first = f'# 1 "{w}"\n# 1 "t.h" 1\ntypedef int T;\n# 2 "{w}" 2\n# 1 "u.h" 1\nT x;\n'
    other = f'# 1 "{w}"\n# 1 "t.h" 1\nint T;\n# 2 "{w}" 2\n# 1 "u.h" 1\nT x;\n'
    p = SegmentParser()
    a = p.parse(first, "w.c")
    assert p.reused == 0
    b = p.parse(first, "w.c")
    assert p.reused == 3 and [n.name for n in b.ext] == [n.name for n in a.ext] == ["T", "x"]
    # "T x;" means something else when T is not a typedef name: not reused, and it fails
    with pytest.raises(ParseFailure) as e:
        p.parse(other, "w.c")
    assert (e.value.file, e.value.line) == ("u.h", 1)
