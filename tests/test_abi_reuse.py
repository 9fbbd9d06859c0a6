"""A pass's declarations and macro shortcuts reused by the next pass of the same shape (``c.reuse``).

A patched tree (``generate``'s, a series under review, the next commit of a
history) mostly adds ``#define`` lines.  Its declarations are then those of
the tree before it, some on other lines, and are taken from that tree's pass
with the lines moved; its macros' values are taken from what each depended
on, when all of it gets the same answers.  Whatever is reused, the model
must be the one a fresh dump gives: every test compares with one.  Real cpp,
the real 4.17.5 tree, and files handed from one process to the next.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import time
from array import array
from pathlib import Path

import pytest

from xenpatch.abi import api, sources
from xenpatch.abi.c import reuse
from xenpatch.abi.model import ARCHES, TypeInfo
from xenpatch.abi.sources import HeaderSource

ROOT = Path(__file__).resolve().parent.parent
# Where generate puts SIF_HVM_GHCB: among the SIF_* flags, in the middle of xen.h.
SIF_ANCHOR = "#define SIF_PRIVILEGED"
ADDED = "#define SIF_TEST_ONE (1<<9)\n#define SIF_TEST_TWO (1<<10)\n\n"


@pytest.fixture(autouse=True)
def fresh_process():
    api.forget()
    yield
    api.forget()


def _source(files: dict[str, bytes], name: str) -> HeaderSource:
    return HeaderSource(name, None, files)


def _with(files, rel: str, old: str, new: str) -> dict[str, bytes]:
    text = files[rel].decode()
    assert old in text, f"{old!r} not in {rel}"
    return {**files, rel: text.replace(old, new, 1).encode()}


def _dump(src: HeaderSource, cache: Path, roots=None):
    return api.dump(src, ARCHES, "tools", cache_dir=cache, jobs=1, roots=roots)


def _store(cache: Path) -> reuse.PassStore:
    return api._STORES[reuse.directory_under(cache)]


def _new_process(cache: Path) -> None:
    """What the end of one process and the start of the next do to the store."""
    _store(cache).save()
    api.forget()


def _fresh(src: HeaderSource, tmp: Path):
    """The model of SRC from nothing: an empty cache, nothing in memory."""
    api.forget()
    model = _dump(src, tmp / "fresh-cache")
    api.forget()
    return model


@pytest.fixture(scope="module")
def base_files(xen_tree: Path) -> dict[str, bytes]:
    return dict(sources.from_tree(xen_tree).files)


def test_a_patched_tree_takes_the_base_declarations_with_the_lines_moved(base_files, tmp_path):
    cache = tmp_path / "cache"
    base = _dump(_source(base_files, "base"), cache)
    _new_process(cache)
    patched = _source(_with(base_files, "xen.h", SIF_ANCHOR, ADDED + SIF_ANCHOR), "patched")
    model = _dump(patched, cache)
    assert _store(cache).replayed == len(ARCHES)  # every arch, none parsed
    assert model.arches == _fresh(patched, tmp_path).arches
    # The fix-up was needed: xen.h's types after the new lines moved down by 3, the
    # others stayed.
    anchor = base_files["xen.h"].decode().split("\n").index(
        next(line for line in base_files["xen.h"].decode().split("\n")
             if line.startswith(SIF_ANCHOR))) + 1
    before = {t.name: t for t in base.arches[0].types}
    moved = stayed = 0
    for t in model.arches[0].types:
        old = before[t.name]
        if t.header == "xen.h" and old.line > anchor:
            assert t.line == old.line + 3
            moved += 1
        else:
            assert t.line == old.line
            stayed += 1
    assert moved and stayed


def test_in_one_process_the_pass_is_taken_from_memory(base_files, tmp_path):
    """generate dumps the base and then its patched tree in one process."""
    cache = tmp_path / "cache"
    _dump(_source(base_files, "base"), cache)
    patched = _source(_with(base_files, "xen.h", SIF_ANCHOR, ADDED + SIF_ANCHOR), "patched")
    model = _dump(patched, cache)
    assert _store(cache).replayed == len(ARCHES)
    assert not list(reuse.directory_under(cache).glob("*")), "written only at exit"
    assert model.arches == _fresh(patched, tmp_path).arches


def test_a_changed_declaration_is_parsed_again(base_files, tmp_path):
    cache = tmp_path / "cache"
    _dump(_source(base_files, "base"), cache)
    _new_process(cache)
    patched = _source(_with(base_files, "xen.h", "    uint32_t flags;             /* SIF_xxx",
                            "    uint32_t flags2;\n    uint32_t flags;             /* SIF_xxx"),
                      "patched")
    model = _dump(patched, cache)
    # start_info is under XEN_HAVE_PV_GUEST_ENTRY (x86): the arm passes still replay
    assert _store(cache).replayed == 2
    assert model.arches == _fresh(patched, tmp_path).arches
    for arch in model.arches:
        if arch.arch.startswith("x86"):
            assert "flags2" in {f.name for f in arch.type_map["struct start_info"].fields}
        else:
            assert "struct start_info" not in arch.type_map


def test_an_anonymous_enum_named_after_its_line_that_moved_is_parsed_again(base_files,
                                                                          tmp_path):
    cache = tmp_path / "cache"
    base = _dump(_source(base_files, "base"), cache)
    anonymous = sorted(set.intersection(*({t for t in a.type_map if re.match(r"enum .+:\d+$", t)}
                                          for a in base.arches)))
    assert anonymous, "4.17.5 has anonymous enums on every arch (their names hold their line)"
    header = anonymous[0][len("enum "):].rsplit(":", 1)[0]
    _new_process(cache)
    # One comment line on top: the same shape, every line of HEADER one further down.
    patched = _source({**base_files, header: b"/* moved */\n" + base_files[header]}, "patched")
    model = _dump(patched, cache)
    assert _store(cache).replayed == 0
    fresh = _fresh(patched, tmp_path)
    assert model.arches == fresh.arches
    assert f"enum {header}:{int(anonymous[0].rsplit(':', 1)[1]) + 1}" in fresh.arches[0].type_map


def test_changed_macros_are_evaluated_again(tmp_path):
    """A shortcut is taken only when every definition and every answer about the types
    it depended on is the same."""
    files = {"xen.h": b"#ifndef XEN_H\n#define XEN_H\nstruct s { int a; };\n"
                      b"#define S_SIZE sizeof(struct s)\n#define TWICE (S_SIZE * 2)\n"
                      b"#define BASE 3\n#define DERIVED (BASE + 1)\n#define KEPT (1 << 4)\n"
                      b"#endif\n"}
    cache = tmp_path / "cache"
    _dump(_source(files, "base"), cache)
    _new_process(cache)
    changed = _with(_with(files, "xen.h", "int a;", "int a; long b;"), "xen.h",
                    "#define BASE 3", "#define BASE 30")
    model = _dump(_source(changed, "changed"), cache)
    store = _store(cache)
    known = store.known("x86_64", "tools")
    assert known, "the first process's shortcuts were read"
    x86_64 = next(a for a in model.arches if a.arch == "x86_64")
    values = {m.name: m.value for m in x86_64.macros}
    assert values == {"XEN_H": None, "S_SIZE": 16, "TWICE": 32, "BASE": 30, "DERIVED": 31,
                      "KEPT": 16}
    # what took a shortcut and what was worked out again
    (learned,) = [k.learned for (arch, _), k in store._memory.items() if arch == "x86_64"]
    assert learned["KEPT"] is known["KEPT"] and learned["XEN_H"] is known["XEN_H"]
    for name in ("S_SIZE", "TWICE", "BASE", "DERIVED"):
        assert learned[name] is not known[name]
    assert model.arches == _fresh(_source(changed, "changed"), tmp_path).arches


def test_unreadable_and_foreign_files_are_misses(base_files, tmp_path):
    cache = tmp_path / "cache"
    _dump(_source(base_files, "base"), cache)
    _new_process(cache)
    where = reuse.directory_under(cache)
    decls = sorted(where.glob("*-*.pickle"))
    assert len(decls) == len(ARCHES)
    decls[0].write_bytes(b"not a pickle")
    decls[1].write_bytes(pickle.dumps(os.system))  # would run a command if unpickled
    for path in where.glob("macros-*.marshal"):
        path.write_bytes(b"\0garbage")
    patched = _source(_with(base_files, "xen.h", SIF_ANCHOR, ADDED + SIF_ANCHOR), "patched")
    model = _dump(patched, cache)
    assert _store(cache).replayed == len(ARCHES) - 2
    assert model.arches == _fresh(patched, tmp_path).arches
    with open(decls[1], "rb") as f, pytest.raises(pickle.UnpicklingError):
        reuse._Unpickler(f).load()


def test_only_whole_passes_worked_out_here_are_written(base_files, tmp_path):
    cache = tmp_path / "cache"
    where = reuse.directory_under(cache)
    _dump(_source(base_files, "base"), cache, roots=["memory.h"])  # a partial view
    _new_process(cache)
    assert not where.exists()
    _dump(_source(base_files, "base"), cache)
    _new_process(cache)
    written = sorted(p.name for p in where.iterdir())
    assert len(written) == 2 * len(ARCHES)  # declarations and macros per arch
    patched = _source(_with(base_files, "xen.h", SIF_ANCHOR, ADDED + SIF_ANCHOR), "patched")
    _dump(patched, cache)
    _new_process(cache)  # replayed: nothing new to keep
    assert sorted(p.name for p in where.iterdir()) == written


def test_the_first_and_the_last_whole_tree_of_a_process_are_written(tmp_path):
    """The base a later process patches (generate's, review's, a diff's old side) and
    the newest tree (a history's last commit, which abi dump then finds cached)."""
    cache = tmp_path / "cache"
    trees = [_source({"xen.h": f"struct s{n} {{ int a; }};\n".encode()}, f"t{n}")
             for n in range(3)]
    for src in trees:
        _dump(src, cache)
    _new_process(cache)
    for n, src in enumerate(trees):
        _dump(_source({"xen.h": src.files["xen.h"] + b"#define ADDED 1\n"}, f"p{n}"), cache)
        assert _store(cache).replayed == (0 if n == 1 else len(ARCHES)), n
        api.forget()


def test_more_whole_passes_than_memory_holds_are_saved_without_error(tmp_path, monkeypatch):
    """Every arch in every profile of several trees (a long-lived process: a watch bot,
    a diff whose partial views fell back to whole ones) is more first and last whole
    passes than the memory holds: the newest pass is never the one that goes, and the
    end of the process writes what is left (once it wrote a pass it had dropped: a
    KeyError at exit, and nothing written)."""
    monkeypatch.setattr(reuse.PassStore, "MEMORY", 3)
    cache = tmp_path / "cache"
    for n in range(3):
        files = {"xen.h": f"struct s{n} {{ int a; }};\n#define N {n}\n".encode()}
        for profile in ("tools", "guest", "guest-latest"):
            api.dump(_source(files, f"tree{n}"), ARCHES, profile, cache_dir=cache, jobs=1)
    store = _store(cache)
    assert len(store._memory) == 3
    taken = store.take()
    assert taken and all(kept is not None for _, _, passes in taken for _, kept in passes)
    store.write(taken)
    assert list(reuse.directory_under(cache).glob("*-*.pickle"))


def test_old_code_files_go_and_the_files_are_bounded(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    stale = cache / "passes-0000000000000000"
    stale.mkdir(parents=True)
    (stale / "x86_64-00.pickle").write_bytes(b"")
    monkeypatch.setattr(reuse, "MAX_FILES", 2)
    for n in range(3):
        files = {"xen.h": f"struct s{n} {{ int a; }};\n#define N {n}\n".encode()}
        _dump(_source(files, f"tree{n}"), cache)
        _new_process(cache)
    assert not stale.exists()
    where = reuse.directory_under(cache)
    assert len(list(where.glob("*-*.pickle"))) == 2


def test_relocate_moves_each_line_and_refuses_what_it_cannot_pair():
    t = TypeInfo("struct a", "struct", 4, 4, "a.h", 10)
    u = TypeInfo("struct b", "struct", 4, 4, "b.h", 3)
    headers = ["a.h", "a.h", "b.h"]
    moved = reuse.relocate({t.name: t, u.name: u}, headers, array("l", [9, 10, 3]),
                           array("l", [9, 12, 3]))
    assert moved == {t.name: TypeInfo("struct a", "struct", 4, 4, "a.h", 12), u.name: u}
    # a.h:10 twice (a header read twice), moved apart: no pairing
    assert reuse.relocate({t.name: t}, ["a.h", "a.h"], array("l", [10, 10]),
                          array("l", [10, 11])) is None
    # a type on a line the text does not have
    assert reuse.relocate({t.name: t}, ["a.h"], array("l", [11]), array("l", [12])) is None
    anonymous = TypeInfo("enum a.h:10", "enum", 4, 4, "a.h", 10)
    assert reuse.relocate({anonymous.name: anonymous}, ["a.h"], array("l", [10]),
                          array("l", [11])) is None


def test_finish_stops_the_workers_and_writes_every_process_s_passes(base_files, tmp_path,
                                                                   monkeypatch):
    """cli.main's end: the workers write theirs as they stop, this process its own, and
    finish returns only when all of it is written."""
    save = reuse.PassStore.save

    def slow_save(self: reuse.PassStore) -> None:  # the forked worker has it too
        time.sleep(0.5)
        save(self)

    monkeypatch.setattr(reuse.PassStore, "save", slow_save)
    cache = tmp_path / "cache"
    api.dump(_source(base_files, "base"), ARCHES, "tools", cache_dir=cache, jobs=2)
    assert api._WORKERS  # one group went to a worker
    api.finish()
    assert not api._WORKERS
    written = sorted(p.name.split("-")[0] for p in reuse.directory_under(cache).glob("*.pickle"))
    assert written == sorted(ARCHES)


def test_one_process_hands_its_passes_to_the_next(base_files, tmp_path):
    """The real exit path: ``abi dump`` in worker processes, the files written as each
    process ends, a patched tree's dump in the next process the same as a fresh one."""
    base_dir, patched_dir = tmp_path / "base", tmp_path / "patched"
    patched_files = _with(base_files, "xen.h", SIF_ANCHOR, ADDED + SIF_ANCHOR)
    for where, files in ((base_dir, base_files), (patched_dir, patched_files)):
        for rel, data in files.items():
            (where / rel).parent.mkdir(parents=True, exist_ok=True)
            (where / rel).write_bytes(data)

    def dump(headers: Path, cache: Path) -> str:
        env = dict(os.environ, XENPATCH_ABI_CACHE=str(cache), PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", "abi", "dump",
                               "--headers", str(headers)], capture_output=True, text=True,
                              env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    cache = tmp_path / "cache"
    dump(base_dir, cache)
    where = reuse.directory_under(cache)
    assert len(list(where.glob("*-*.pickle"))) == len(ARCHES)  # both workers wrote theirs
    assert dump(patched_dir, cache) == dump(patched_dir, tmp_path / "fresh")
