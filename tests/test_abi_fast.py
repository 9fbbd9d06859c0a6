"""The speed tricks' contract (xenpatch/abi/c/fast.py): the pycparser it relies on, and equal results.

The first test fails when the installed pycparser is outside the range
whose internals ``fast.ScopedParser`` uses: upgrade the range only after
checking those internals (and this file) against the new version.
"""

from __future__ import annotations

import json

import pycparser
import pytest
from pycparser import c_parser

from xenpatch.abi.c import fast, parse
from xenpatch.errors import EnvironmentFailure


def test_installed_pycparser_is_a_supported_version() -> None:
    assert fast.supported(pycparser.__version__), (
        f"pycparser {pycparser.__version__} is outside fast.PYCPARSER {fast.PYCPARSER}")
    fast.check_pycparser()  # and the internals are there
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
