"""Dumps in worker processes: begun before they are waited for (``api.start``), and handed
over through files rather than pipes (``api._sent``, ``api._remote``).

``abi diff`` starts both sides, then dumps both: each worker goes from the
first side's arches to the second's while this process does its own.  What
a worker gets and gives back goes through this process's transfer directory.
Whatever the route, the models must be those a plain dump gives, nothing may
be left behind, and a start no dump follows must change no result.  Real
cpp, the real 4.17.5 tree, real worker processes.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from xenpatch.abi import api, sources
from xenpatch.abi.model import ARCHES
from xenpatch.abi.sources import HeaderSource

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_process():
    api.forget()
    yield
    api.forget()


@pytest.fixture(scope="module")
def two_sides(xen_tree: Path) -> tuple[HeaderSource, HeaderSource]:
    files = dict(sources.from_tree(xen_tree).files)
    text = files["xen.h"].decode()
    anchor = "#define SIF_PRIVILEGED"
    assert anchor in text
    new = dict(files, **{"xen.h": text.replace(
        anchor, "#define SIF_TEST_ONE (1<<9)\n" + anchor, 1).encode()})
    return HeaderSource("old", None, files), HeaderSource("new", None, new)


def _plain(src: HeaderSource, cache: Path):
    return api.dump(src, ARCHES, "tools", cache_dir=cache, jobs=1)


def test_started_dumps_are_the_plain_dumps(two_sides, tmp_path):
    old, new = two_sides
    plain = [_plain(s, tmp_path / "plain").to_json() for s in (old, new)]
    api.forget()
    cache = tmp_path / "started"
    for src in (old, new):
        api.start(src, ARCHES, "tools", cache_dir=cache, jobs=2)
    assert len(api._STARTED) == 2 and all(run.futures for run in api._STARTED.values())
    submitted = [run.futures[0] for run in api._STARTED.values()]
    got = [api.dump(s, ARCHES, "tools", cache_dir=cache, jobs=2).to_json() for s in (old, new)]
    assert got == plain
    assert not api._STARTED  # each dump took its start's work, none was sent twice
    assert all(f.done() for f in submitted)
    # what went to the worker and back: the files of each side, once; no results left
    transfer = api._TRANSFER[0]
    assert sorted(p.name.split("-")[0] for p in transfer.iterdir()) == ["files", "files"]


def test_this_process_does_its_part_of_the_next_dump_while_the_worker_is_late(
        two_sides, tmp_path):
    """A worker still on its part of the first of two started dumps (kept busy here on
    purpose): this process does its own part of the second meanwhile (``_work_ahead``),
    which the second dump then takes; the models are the plain ones.  An error met
    ahead is raised by the dump it belongs to, not by the one that waited."""
    import time
    from concurrent.futures import Future

    old, new = two_sides
    plain = [_plain(s, tmp_path / "plain").to_json() for s in (old, new)]
    api.forget()
    cache = tmp_path / "late"
    api._worker(api._groups(list(ARCHES), 2)[0]).submit(time.sleep, 3)
    for src in (old, new):
        api.start(src, ARCHES, "tools", cache_dir=cache, jobs=2)
    second = list(api._STARTED.values())[1]
    first = api.dump(old, ARCHES, "tools", cache_dir=cache, jobs=2)
    assert len(second.ahead) == 1 and second.ahead[0][1] is None  # done ahead, no error
    assert [first.to_json(), api.dump(new, ARCHES, "tools", cache_dir=cache,
                                      jobs=2).to_json()] == plain
    assert not second.ahead and not api._STARTED

    waiting: Future[str] = Future()
    failing = api._Launched(("x86_64",), True, (Future(),), ("x86_64",), own=lambda: 1 // 0)
    api._STARTED[("failing", ("x86_64",), "cpp", None, 2)] = failing
    api._work_ahead(waiting)
    with pytest.raises(ZeroDivisionError):
        failing.own_part()
    done: Future[str] = Future()
    done.set_result("")
    untouched = api._Launched(("x86_64",), True, (Future(),), ("x86_64",), own=lambda: 1 // 0)
    api._STARTED[("untouched", ("x86_64",), "cpp", None, 2)] = untouched
    api._work_ahead(done)  # the worker is done: nothing is done ahead
    assert not untouched.ahead
    api._STARTED.clear()


def test_a_worker_diffs_its_arches_against_the_side_it_made(two_sides, tmp_path,
                                                               monkeypatch):
    """``start(new, against=old)``: the worker that made both sides of its arches sends
    their changes with its models, and ``diff_models`` here compares only this process's
    own arches; the changes are those of a plain diff of plain dumps."""
    from xenpatch.abi import diff

    old, new = two_sides
    plain = diff.diff_models(*(_plain(s, tmp_path / "plain") for s in (old, new)))
    assert any(ch.name == "SIF_TEST_ONE" and len(ch.arches) == 4 for ch in plain)
    api.forget()
    diff._REMEMBERED.clear()
    cache = tmp_path / "cache"
    api.start(old, ARCHES, "tools", cache_dir=cache, jobs=2)
    api.start(new, ARCHES, "tools", cache_dir=cache, jobs=2, against=old)
    a, b = (api.dump(s, ARCHES, "tools", cache_dir=cache, jobs=2) for s in (old, new))
    here = api._groups(list(ARCHES), 2)[-1]
    remembered = {old_arch.arch for old_arch, _, _ in diff._REMEMBERED.values()}
    assert remembered and remembered.isdisjoint(here) and remembered | set(here) == set(ARCHES)
    compared: list[str] = []
    real = diff._diff_macros
    monkeypatch.setattr(diff, "_diff_macros",
                        lambda o, n, skip, arch: compared.append(arch[0]) or real(o, n, skip, arch))
    assert diff.diff_models(a, b) == plain
    assert sorted(compared) == sorted(here)
    # equal models that are not those objects are compared, as ever
    compared.clear()
    assert diff.diff_models(*(type(m).from_json(m.to_json()) for m in (a, b))) == plain
    assert sorted(compared) == sorted(ARCHES)


def test_a_start_is_skipped_for_what_the_cache_has(two_sides, tmp_path):
    old, _ = two_sides
    cache = tmp_path / "cache"
    api.dump(old, ARCHES, "tools", cache_dir=cache, jobs=2)
    api.start(old, ARCHES, "tools", cache_dir=cache, jobs=2)
    assert not api._STARTED


def test_a_start_no_dump_takes_changes_nothing(two_sides, tmp_path):
    """A start whose dump asks for other arches (or never comes) is left alone: the dump
    does its own work, and its model is the plain one."""
    old, new = two_sides
    plain = _plain(new, tmp_path / "plain").to_json()
    api.forget()
    cache = tmp_path / "cache"
    api.start(new, ARCHES, "tools", cache_dir=cache, jobs=2)
    api.start(old, ARCHES, "tools", cache_dir=cache, jobs=2)  # never dumped
    model = api.dump(new, ARCHES, "tools", cache_dir=cache, jobs=2)
    assert model.to_json() == plain
    two = api.dump(new, ("x86_64", "arm64"), "tools", cache_dir=tmp_path / "other", jobs=2)
    assert [a.to_json() for a in two.arches] == \
        [a.to_json() for a in model.arches if a.arch in ("x86_64", "arm64")]


def test_the_transfer_directory_goes_with_the_process(two_sides, tmp_path):
    """``abi dump`` in a new process, its workers fed through the transfer directory: when
    it ends, nothing of it is left in the scratch directory."""
    old, _ = two_sides
    headers = tmp_path / "headers"
    for rel, data in old.files.items():
        (headers / rel).parent.mkdir(parents=True, exist_ok=True)
        (headers / rel).write_bytes(data)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT),
           "XENPATCH_ABI_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", "abi", "dump", "-j", "2",
                           "--headers", str(headers), "-o", str(tmp_path / "dump.json")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dump.json").stat().st_size > 100_000
    assert list(scratch.iterdir()) == []


def test_abi_diff_keeps_both_sides_passes(two_sides, tmp_path):
    """``abi diff`` has its workers write their passes once both sides are started
    (``api.write_passes_soon``), and writes its own at the end: both sides' passes of
    every arch are there for the next process, and the diff is the one ``-j 1`` gives."""
    old, new = two_sides
    # a new declaration too: a side that differs by defines alone has the other's shape,
    # and takes its declarations rather than working out passes of its own (``c.reuse``)
    new = HeaderSource("new", None, dict(new.files, **{"xen.h": new.files["xen.h"].replace(
        b"#define SIF_TEST_ONE", b"struct xenpatch_test { int a; };\n#define SIF_TEST_ONE")}))
    dirs = []
    for src in (old, new):
        where = tmp_path / src.description
        for rel, data in src.files.items():
            (where / rel).parent.mkdir(parents=True, exist_ok=True)
            (where / rel).write_bytes(data)
        dirs.append(str(where))
    outs, pieces = [], []
    for jobs in ("2", "1"):
        cache = tmp_path / f"cache-{jobs}"
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
               "XENPATCH_ABI_CACHE": str(cache)}
        proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", "abi", "diff", "-j", jobs,
                               *dirs, "--format", "json"],
                              capture_output=True, text=True, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
        passes = [p.name.split("-")[0] for p in cache.glob("passes-*/*.pickle")]
        assert sorted(passes) == sorted(ARCHES * 2), jobs
        # the models' JSON, written while the command waited (``api.write_texts_later``):
        # both sides' tools views and their guest views, every arch
        models = [p.stem.rsplit("-", 1)[1] for p in cache.glob("??/*.json")]
        assert sorted(set(models)) == sorted(ARCHES) and len(models) >= 4 * len(ARCHES)
        # and the parsed pieces, stored by the writer and at the end of the command
        (store,) = cache.glob("pieces-*.sqlite")
        with sqlite3.connect(store) as con:
            pieces.append(con.execute("SELECT text, context FROM piece").fetchall())
    assert len(pieces[0]) > 1000 and sorted(pieces[0]) == sorted(pieces[1])
    assert outs[0] == outs[1] and "SIF_TEST_ONE" in outs[0] and "xenpatch_test" in outs[0]


def test_texts_written_later_are_written_by_finish(two_sides, tmp_path):
    """``write_texts_later``: a dump returns before the cache has its models' JSON (its
    workers' too: they send their models back without it), and ``finish`` writes it, the
    same text a plain dump writes."""
    from xenpatch.abi import modelcache

    old, _ = two_sides
    plain_cache, cache = tmp_path / "plain", tmp_path / "later"
    api.dump(old, ARCHES, "tools", cache_dir=plain_cache, jobs=2)
    api.forget()
    api.write_texts_later()
    model = api.dump(old, ARCHES, "tools", cache_dir=cache, jobs=2)
    key = modelcache.Key.of(old, "tools", "cpp")
    assert all(modelcache.load_text(cache, key, a) is None for a in ARCHES)
    here = api._groups(list(ARCHES), 2)[-1]  # the arches done in this process
    assert sorted(arch for _, _, arch, _ in api._UNWRITTEN) == sorted(here)
    api.finish()
    for arch in ARCHES:
        assert modelcache.load_text(cache, key, arch) == \
            modelcache.load_text(plain_cache, key, arch), arch
    assert modelcache.load(cache, key, "x86_64") == model.arch_map["x86_64"]


def test_a_writer_process_writes_the_caches_and_finish_waits_for_it(two_sides, tmp_path):
    """``write_passes_soon`` forks a writer for this process's passes and model JSON: the
    files are the ones the command would write at its end, and ``finish`` reaps it."""
    import os

    from xenpatch.abi import modelcache
    from xenpatch.abi.c import reuse

    old, _ = two_sides
    cache = tmp_path / "cache"
    api.write_texts_later()
    api.dump(old, ARCHES, "tools", cache_dir=cache, jobs=1)
    assert api._UNWRITTEN
    api.write_passes_soon()
    assert not api._UNWRITTEN and len(api._WRITERS) == 1
    writer = api._WRITERS[0]
    api.finish()
    assert not api._WRITERS
    with pytest.raises(ChildProcessError):
        os.waitpid(writer, os.WNOHANG)  # reaped, not a zombie
    key = modelcache.Key.of(old, "tools", "cpp")
    assert all(modelcache.load_text(cache, key, a) for a in ARCHES)
    passes = sorted(p.name.split("-")[0] for p in reuse.directory_under(cache).glob("*.pickle"))
    assert passes == sorted(ARCHES)
