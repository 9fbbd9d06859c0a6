"""The speed tricks' contract (xenpatch/abi/c/fast.py): the pycparser it relies on, and equal results.

The first test fails when the installed pycparser is outside the range
whose internals ``fast.ScopedParser`` uses: upgrade the range only after
checking those internals (and this file) against the new version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pycparser
import pytest
from pycparser import c_parser

from xenpatch.abi.c import fast, parse
from xenpatch.errors import EnvironmentFailure


def test_installed_pycparser_is_a_supported_version() -> None:
    assert fast.supported(pycparser.__version__), (
        f"pycparser {pycparser.__version__} is outside fast.PYCPARSER {fast.PYCPARSER}")
    fast.check_pycparser()  # and the internals are there
    assert fast.fast_lexer_class() is not None  # and those the fast lexer reads
    for name in ("_scope_stack", "_typedef_checked_token"):  # set in CParser.parse()
        assert name in c_parser.CParser.parse.__code__.co_names


@pytest.mark.parametrize(("version", "ok"), [
    ("3.0", True), ("3.12", True), ("3.0rc1", True), ("2.22", False), ("2.21", False),
    ("4.0", False), ("10.1", False), ("", False)])
def test_supported_range(version: str, ok: bool) -> None:
    assert fast.supported(version) is ok


def test_an_unsupported_pycparser_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pycparser, "__version__", "2.22")
    with pytest.raises(EnvironmentFailure, match=r"^pycparser 2\.22 is not supported "
                                                 r"\(xenpatch needs >= 3\.0, < 4\.0\)$"):
        fast.check_pycparser()


def test_scoped_parser_parses_as_pycparser_does() -> None:
    """Seeded with the typedef names in scope, one declaration parses to what the whole
    translation unit gives for it."""
    text = "typedef int T;\nstruct s { T a; T *b[2]; };\n"
    whole = parse.parse(text, "t.h").ext
    scoped = fast.scoped_parser_class()(dialect="c23")
    piece = scoped.parse_in_scope("# 2 \"t.h\"\nstruct s { T a; T *b[2]; };\n", "t.h",
                                  {"T": True}).ext
    assert repr(piece) == repr(whole[1:])
    assert scoped.file_scope == {"T": True}


def test_codecs_round_trip_every_node_of_a_header() -> None:
    text = ("typedef unsigned long long u64; enum e { A = 1 << 2, B };\n"
            "struct s { u64 x : 3; union { char c[4]; int i; } u; void (*f)(int); };\n")
    nodes = parse.parse(text, "t.h").ext
    back, delta, line = parse.decode(parse.encode((nodes, {"u64": True}, 0)))
    assert repr(back) == repr(nodes) and delta == {"u64": True} and line == 0


def test_spliced_document_is_the_document_json_writes() -> None:
    arches = {"x86_64": {"b": [1, 2], "a": "\u00e9\"x"}, "arm32": {"z": None}}
    doc = {"schema": "s", "source": {"rev": "r"}}
    spliced = fast.splice_arches(doc, {a: fast.compact_json(m) for a, m in arches.items()})
    assert spliced == json.dumps(dict(doc, arches=arches), sort_keys=True, separators=(",", ":"))


def test_collector_paused_restores_the_collector() -> None:
    import gc

    assert gc.isenabled()
    with fast.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with fast.collector_paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


# -- the fast lexer -----------------------------------------------------------------------

def _plain_tokens(text: str, filename: str = "t.h") -> tuple[list, list]:
    """pycparser's own tokens of TEXT, and the errors its lexer reported."""
    from pycparser import c_lexer

    errors: list[tuple[str, int, int]] = []
    lexer = c_lexer.CLexer(lambda msg, line, col: errors.append((msg, line, col)),
                           dialect="c23")
    lexer.input(text, filename)
    return [*iter(lexer.token, None), None], errors


def _fast_tokens(text: str, filename: str = "t.h") -> list | None:
    lexer = fast.fast_lexer_class()
    assert lexer is not None, "the installed pycparser's lexer lacks what FastLexer reads"
    return lexer(fast._refuse, dialect="c23").tokens(text, filename)


TRICKY = [
    "typedef unsigned long xen_pfn_t;\nstruct s { int a[4]; char *p; };\n",
    'L"wide" u8"x" u\'c\' U"y" Lfoo Lx "s" L\'w\' u8\'q\'',
    "a->b a-=1 a-- a-1 x*=2 *p a<<=b a<=b a<b <% %> <: :> %: %:%: a::b ... a.b .5 p.q",
    "1.5e3 0x1p3 1'000 077 0 0u 10ULL 0x1fUL 1wb 0b101 a1 _1 1a",
    "[[gnu::packed]] [ [x]] a[1] a[ 2 ] a[\n[b]] ]]",
    '# 12 "f.h" 3\nint x;\n#line 7 "g.h"\nint y;\n# 3\nint z;\n',
    "#pragma pack(1)\nstruct s { int a; };\n_Pragma(\"once\") int z;\n#pragma\n",
    "$id a$b _x\tb\fc\vd\ne  \n\n  f",
    "'ab' 'a' '\\n' \"s\\\"q\" '\\x41' '\\0' \"lax \\q escape\"",
    "a ? b : c ; ~x ! y != z == w && q || r ^ s | t & u % v = w += x >>= y",
    "struct S { int a : 3, : 0; } x = { .a = 1 }, *y[2][3];",
    "",
    "\n\n",
]
BROKEN = [
    "int a; /* comment */",
    "int a; // comment",
    'char *s = "unterminated;\n',
    "x ` y @ z",
    "'' 'abcdef'",
    "0 08 1",
    "[[gnu::aligned(8]] int x;",
    "int a;\r\nint b;",
]


@pytest.mark.parametrize("text", TRICKY)
def test_fast_lexer_gives_pycparsers_tokens(text: str) -> None:
    tokens, errors = _plain_tokens(text)
    assert errors == []
    assert _fast_tokens(text) == tokens


@pytest.mark.parametrize("text", BROKEN)
def test_fast_lexer_leaves_what_pycparser_rejects_to_pycparser(text: str) -> None:
    _, errors = _plain_tokens(text)
    assert errors, "not a lexing error: move it to TRICKY"
    assert _fast_tokens(text) is None


@pytest.mark.parametrize("text", [
    "struct s { int a; ", "int x = ;", "typedef int T; T T;", "int f(int a, ) ;",
    "struct { int a; } b c;", "int a; /* x */", "enum e { A = , B };"])
def test_a_parse_error_is_pycparsers_error(text: str) -> None:
    """The fast path gives up on an error, and the text is parsed the plain way: the
    message and the lexer's place (parse._failure reads it) are pycparser's own."""
    scoped = fast.scoped_parser_class()(dialect="c23")
    with pytest.raises(c_parser.ParseError) as fast_error:
        scoped.parse_in_scope(text, "t.h", {})
    plain = c_parser.CParser(dialect="c23")
    with pytest.raises(c_parser.ParseError) as plain_error:
        plain.parse(text, "t.h")
    assert str(fast_error.value) == str(plain_error.value)
    assert (scoped.clex._lineno, scoped.clex._filename) == \
        (plain.clex._lineno, plain.clex._filename)


def test_fast_lexer_gives_pycparsers_tokens_on_every_piece_of_a_real_tree(
        xen_tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every text the parser gets from 4.17.5 on the four arches, tools and guest views:
    the same tokens, coordinates included, as pycparser's lexer; and the same models with
    the fast lexer as without it."""
    from xenpatch.abi import model, sources
    from xenpatch.abi.c import pipeline

    files = sources.from_tree(xen_tree).files
    scoped = fast.scoped_parser_class()
    seen: dict[tuple[str, str], None] = {}
    parse_in_scope = scoped.parse_in_scope

    def recording(self, text, filename, scope):  # type: ignore[no-untyped-def]
        seen[(text, filename)] = None
        return parse_in_scope(self, text, filename, scope)

    monkeypatch.setattr(scoped, "parse_in_scope", recording)
    models = {}
    parser = parse.SegmentParser()  # each distinct piece parsed once
    for arch in model.ARCHES:
        for profile in ("tools", "guest"):
            models[(arch, profile)] = pipeline.run(files, arch, profile, "cpp",
                                                   tmp_path / f"{arch}-{profile}", parser)
    assert len(seen) > 1500
    tokens = 0
    for text, filename in seen:
        plain, errors = _plain_tokens(text, filename)
        assert errors == []
        assert _fast_tokens(text, filename) == plain, text[:200]
        tokens += len(plain)
    assert tokens > 50_000

    monkeypatch.setattr(fast, "fast_lexer_class", lambda: None)
    fast.scoped_parser_class.cache_clear()
    try:
        plain_model = pipeline.run(files, "x86_32", "tools", "cpp", tmp_path / "plain",
                                   parse.SegmentParser())
        assert fast.scoped_parser_class()(dialect="c23")._fast is None
    finally:
        fast.scoped_parser_class.cache_clear()
    assert plain_model == models[("x86_32", "tools")]
