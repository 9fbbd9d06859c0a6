"""The parse side of the ABI cache: pieces of preprocessed text, their codec, the SQLite store.

A translation unit is cut into declarations (``parse.chunks``) that parse
alone to the same nodes; what they parse to is stored (``segments.SegmentCache``)
so that a tree that differs in one declaration re-parses only that one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pycparser import c_ast, c_generator

from xenpatch.abi import api, arch, modelcache, segments, sources
from xenpatch.abi.c import parse
from xenpatch.abi.c import preprocess as pp
from xenpatch.abi.c.parse import SegmentParser

W = pp.WRAPPER


def _shape(nodes: list[c_ast.Node]) -> list[tuple[str, str, int, int | None]]:
    """Every node's type, C text and coordinates, in order."""
    out = []
    gen = c_generator.CGenerator()

    def walk(node: c_ast.Node) -> None:
        coord = node.coord
        out.append((type(node).__name__, coord.file if coord else "",
                    coord.line if coord else 0, coord.column if coord else None))
        for _, child in node.children():
            walk(child)

    for n in nodes:
        out.append(("text", gen.visit(n), 0, None))
        walk(n)
    return out


def test_chunks_cut_after_top_level_declarations_and_keep_positions():
    text = (f'# 1 "{W}"\n# 1 "public/a.h" 1\ntypedef int T;\nstruct s {{\n  int a;\n'
            '  T b;\n};\n\nint x;\n# 9 "public/a.h"\nchar c[2]; int d;\n')
    pieces = parse.chunks(text)
    assert len(pieces) == 4
    assert pieces[1].startswith('# 2 "public/a.h"\nstruct s {')  # not cut inside the braces
    assert pieces[2].startswith('# 7 "public/a.h"\nint x;')
    assert pieces[3].startswith('# 9 "public/a.h"\nchar c[2]')
    whole = parse.parse(text, W).ext
    assert _shape(SegmentParser().parse(text, W).ext) == _shape(whole)


def test_a_wrong_cut_falls_back_to_the_whole_segment():
    # a K&R definition's parameter declarations end with ';' at depth 0
    text = f'# 1 "{W}"\n# 1 "public/k.h" 1\nint f(a)\nint a;\n{{ return a; }}\nint y;\n'
    assert len(parse.chunks(text)) == 2  # cut after 'int a;': a wrong cut
    p = SegmentParser()
    assert _shape(p.parse(text, W).ext) == _shape(parse.parse(text, W).ext)


def test_codec_round_trip_keeps_shared_nodes():
    text = f'# 1 "{W}"\n# 3 "public/s.h" 1\nstruct s {{ int a : 3; char b[4]; }} x, y;\n'
    nodes = parse.parse(text, W).ext
    assert nodes[0].type.type is nodes[1].type.type  # one struct, two declarators
    back, delta, line = parse.decode(parse.encode((nodes, {"T": True}, 3)))
    assert delta == {"T": True} and line == 3
    assert back[0].type.type is back[1].type.type
    assert _shape(back) == _shape(nodes)


def _x86_64(files, where: Path) -> str:
    public = pp.stage(files, where)
    todo = pp.order_headers(files, [h for h in sorted(files)
                                    if arch.applies_to(h, "x86_64") and h != "dom0_ops.h"])
    run = pp.run_cpp("cpp", "x86_64", "tools", public, todo)
    assert not run.errors
    return pp.split_output(run.text, public, todo).text


@pytest.fixture(scope="module")
def x86_64_text(xen_tree, tmp_path_factory) -> str:
    return _x86_64(sources.from_tree(xen_tree).files, tmp_path_factory.mktemp("stage"))


def test_segments_cut_before_are_cut_up_once(x86_64_text, monkeypatch):
    """A segment met again (the other arch of a family, an unchanged header of the next
    snapshot) takes its pieces from the parser's memo, and gives the same nodes; past
    MAX_SEGMENTS the oldest go."""
    parser = SegmentParser()
    first = _shape(parser.parse(x86_64_text, W).ext)
    cut: list[str] = []
    real = parse.chunks
    monkeypatch.setattr(parse, "chunks", lambda s: cut.append(s) or real(s))
    anchor = "struct start_info {"
    changed = x86_64_text.replace(anchor, anchor + " int xenpatch_new;", 1)
    assert _shape(parser.parse(x86_64_text, W).ext) == first and cut == []
    got = _shape(parser.parse(changed, W).ext)
    assert len(cut) == 1 and anchor in cut[0]  # only the segment that changed
    assert got == _shape(SegmentParser().parse(changed, W).ext)

    monkeypatch.setattr(parse, "MAX_SEGMENTS", 3)
    small = SegmentParser()
    assert _shape(small.parse(x86_64_text, W).ext) == first
    assert len(small._cut) == 3


def test_a_segment_met_again_in_its_context_takes_its_nodes_whole(x86_64_text, monkeypatch):
    """A segment met again with the same typedef names in scope among its identifiers
    gives the nodes it gave, without a look at its pieces; one that changed is cut up and
    looked up piece by piece, and the translation unit is what a fresh parser makes."""
    parser = SegmentParser()
    first = parser.parse(x86_64_text, W)
    looked: list[str] = []
    real = parser._piece
    monkeypatch.setattr(parser, "_piece", lambda p, text, *a: looked.append(text) or real(p, text, *a))
    again = parser.parse(x86_64_text, W)
    assert looked == [] and _shape(again.ext) == _shape(first.ext)
    assert parser.reused >= parser.parsed > 500  # every piece counted as reused
    anchor = "struct start_info {"
    changed = x86_64_text.replace(anchor, anchor + " int xenpatch_new;", 1)
    got = parser.parse(changed, W)
    assert looked and all(anchor in p for p in looked if "xenpatch_new" in p)
    segment = next(c for c in parser._cut.values() if any(anchor in p for p in c.parts)
                   and any("xenpatch_new" in p for p in c.parts))
    assert len(looked) == len(segment.parts)  # only the segment that changed
    assert _shape(got.ext) == _shape(SegmentParser().parse(changed, W).ext)


def test_segments_are_rewritten_alone_unless_an_attribute_is_left_open():
    """Each segment is rewritten (``rewrite_gnu``) by itself, as it is in the whole text;
    when one leaves an ``__attribute__((`` open, the whole text is rewritten, as before."""
    closed = (f'# 1 "{W}"\n# 1 "public/a.h" 1\nstruct a {{ int x __attribute__((aligned(8))); }};\n'
              f'# 2 "{W}" 2\n# 1 "public/b.h" 1\n__extension__ typedef int b_t;\n')
    open_ = (f'# 1 "{W}"\n# 1 "public/a.h" 1\nint y __attribute__((aligned(4)\n'
             f'# 2 "{W}" 2\n# 1 "public/b.h" 1\n)) ;\n')
    for text in (closed, open_):
        whole = parse.rewrite_gnu(text)
        assert "".join(SegmentParser()._segments(text)) == whole
    parser = SegmentParser()
    parser._segments(open_)
    assert None in parser._rewritten.values()  # the part that left it open
    assert "[[gnu::aligned(8)]]" in "".join(SegmentParser()._segments(closed))
    assert len(SegmentParser()._segments(closed)) == 3


def test_codec_round_trip_on_a_real_translation_unit(x86_64_text):
    nodes = SegmentParser().parse(x86_64_text, W).ext
    back, _, _ = parse.decode(parse.encode((nodes, {}, 0)))
    assert _shape(back) == _shape(nodes)


def test_store_reparses_only_what_changed(x86_64_text, tmp_path):
    store = segments.SegmentCache.under(tmp_path)
    first = SegmentParser(store)
    base = first.parse(x86_64_text, W)
    first.flush()
    assert first.parsed > 500 and store.path.is_file()

    again = SegmentParser(store)
    assert _shape(again.parse(x86_64_text, W).ext) == _shape(base.ext)
    assert again.parsed == 0

    # one declaration changed: only its piece is parsed; the result is what a fresh
    # parser makes of the changed text
    anchor = "struct start_info {"
    assert anchor in x86_64_text
    changed = x86_64_text.replace(anchor, anchor + " int xenpatch_new;", 1)
    patched = SegmentParser(store)
    got = patched.parse(changed, W)
    assert patched.parsed == 1
    assert _shape(got.ext) == _shape(SegmentParser().parse(changed, W).ext)


def test_pieces_another_process_stored_are_not_encoded_again(x86_64_text, tmp_path,
                                                              monkeypatch):
    """The two processes of a dump parse the pieces their arches have in common each; the
    one that stores second encodes only the pieces the store does not have yet."""
    store = segments.SegmentCache.under(tmp_path)
    first = SegmentParser(store)
    first.parse(x86_64_text, W)
    anchor = "struct start_info {"
    changed = x86_64_text.replace(anchor, anchor + " int xenpatch_new;", 1)
    second = SegmentParser()  # the other process: its own parse of the same text
    second.parse(changed, W)
    first.flush()
    encoded: list[object] = []
    real = parse.encode
    monkeypatch.setattr(parse, "encode", lambda v: encoded.append(v) or real(v))
    store.put_many(second._new)
    assert len(encoded) == 1  # the changed piece
    back = SegmentParser(store)
    assert _shape(back.parse(changed, W).ext) == _shape(SegmentParser().parse(changed, W).ext)
    assert back.parsed == 0


def test_pieces_that_moved_are_taken_with_their_coordinates_moved(xen_tree, x86_64_text,
                                                                  tmp_path):
    """A line added above a declaration moves every later one of its header: each is
    the piece it was, a few lines further (``parse.movable``), not a new piece."""
    store = segments.SegmentCache.under(tmp_path)
    first = SegmentParser(store)
    first.parse(x86_64_text, W)
    first.flush()
    files = dict(sources.from_tree(xen_tree).files)
    anchor = b"struct start_info {"
    files["xen.h"] = files["xen.h"].replace(anchor, b"int xenpatch_new;\n" + anchor, 1)
    changed = _x86_64(files, tmp_path / "stage")
    moved = [p for p in parse.chunks(changed) if p not in parse.chunks(x86_64_text)]
    assert len(moved) >= 10  # the pieces after it in xen.h, each at a new line
    for parser in (SegmentParser(store), first):  # from the store, and from memory
        parser.parsed = 0
        got = parser.parse(changed, W)
        assert parser.parsed == 1  # the piece with the new line
        assert _shape(got.ext) == _shape(SegmentParser().parse(changed, W).ext)
    # a piece with a marker of its own inside is taken only where it was
    inner = '# 5 "public/m.h"\nstruct m {\n# 40 "public/m.h"\n int a; };\n'
    assert parse.movable(inner) == (inner.rstrip(), 0)
    # blank lines and markers after the last token are no part of a piece's key
    assert parse.movable('# 5 "public/m.h" 1\nint a;\n\n# 9 "public/m.h"\n\n') == \
        ('# "public/m.h" 1\nint a;', 5)


def test_an_unreadable_store_is_a_miss(xen_tree, tmp_path):
    store = segments.SegmentCache.under(tmp_path)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(b"not a database" * 100)
    assert store.get_many([b"k" * parse.TEXT_KEY]) == {}
    store.put_many({b"k" * 32: ([], {}, 0)})  # skipped, no exception
    src = sources.from_tree(xen_tree)
    model = api.dump(src, ("arm32",), cache_dir=tmp_path)
    assert [f.header for f in model.arches[0].failed] == ["dom0_ops.h"]
    assert Path(store.path).read_bytes().startswith(b"not a database")


def test_a_new_parser_identity_replaces_the_old_pieces(tmp_path):
    stale = tmp_path / "pieces-0000000000000000.sqlite"
    stale.write_bytes(b"")
    store = segments.SegmentCache.under(tmp_path)
    store.put_many({b"t" * parse.TEXT_KEY + b"c" * 16: ([], {"T": True}, 7)})
    assert not stale.exists()
    assert store.get_many([b"t" * parse.TEXT_KEY]) == {b"t" * 16 + b"c" * 16: ([], {"T": True}, 7)}


def test_a_patched_tree_through_the_pieces_of_its_base_is_the_same_model(xen_tree, tmp_path):
    src = sources.from_tree(xen_tree)
    changed = dict(src.files)
    anchor = b"#define SIF_VIRT_P2M_4TOOLS (1<<4)"
    assert anchor in changed["xen.h"]
    changed["xen.h"] = changed["xen.h"].replace(anchor, anchor + b"\n#define SIF_NEW (1<<5)")
    changed["io/ring.h"] = b"typedef unsigned int xenpatch_new_t;\n" + changed["io/ring.h"]
    patched = sources.HeaderSource("patched", None, changed)
    arches = ("x86_32", "arm64")
    api.dump(src, arches, cache_dir=tmp_path / "shared")
    assert list((tmp_path / "shared").glob("pieces-*.sqlite"))
    through_base = api.dump(patched, arches, cache_dir=tmp_path / "shared")
    fresh = api.dump(patched, arches, cache_dir=tmp_path / "fresh")
    assert through_base == fresh
    assert through_base.arches[0].macro_map["SIF_NEW"].value == 32
    base = api.dump(src, arches, cache_dir=tmp_path / "shared").arches[0].macro_map
    ring = [m for m in fresh.arches[0].macros if m.header == "io/ring.h"]
    assert ring and all(m.line == base[m.name].line + 1 for m in ring)


def test_model_cache_keeps_the_most_recently_used(tmp_path):
    """The model cache is bounded: storing past MAX_MODELS drops the least recently used,
    and reading an entry counts as a use."""
    import os

    from xenpatch.abi.model import ArchModel

    model = ArchModel(arch="x86_64", headers=("xen.h",))
    keys = [modelcache.Key(f"{n:064x}") for n in range(6)]
    for n, key in enumerate(keys):
        modelcache.store(tmp_path, key, model)
        path = key.path(tmp_path, "x86_64")
        os.utime(path, ns=(n * 10**9, n * 10**9))  # stored in order, a second apart
    assert modelcache.load(tmp_path, keys[0], "x86_64") == model  # a use: now the newest
    assert modelcache.prune(tmp_path, keep=3) == 3
    left = {k for k in keys if k.path(tmp_path, "x86_64").exists()}
    assert left == {keys[0], keys[4], keys[5]}
