"""cpp's rejections guessed and checked in one run (``preprocess.run_cpp``'s TAIL, ``pipeline.c_pass``).

A pass used to learn that cpp rejects a header (domctl.h and sysctl.h in a
guest view, dom0_ops.h in the tools view) by running over every header, then
again without it.  It now puts the headers it expects cpp to reject after the
others, and when cpp rejects exactly those, takes the output before them: one
run.  That must be the very output, and the very model, of the plain way; a
wrong guess must cost a run, never a result.  Real cpp, the real 4.17.5 tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenpatch.abi import api, sources
from xenpatch.abi.c import pipeline
from xenpatch.abi.c import preprocess as pp
from xenpatch.abi.c.parse import SegmentParser
from xenpatch.abi.model import ARCHES


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    public = tmp_path / "staged" / "public"
    for rel, text in files.items():
        (public / rel).parent.mkdir(parents=True, exist_ok=True)
        (public / rel).write_text(text)
    return public


SMALL = {
    "a.h": "#ifndef A_H\n#define A_H\nstruct a { int x; };\n#endif\n",
    "b.h": '#ifndef B_H\n#define B_H\n#include "a.h"\n#error "b is refused"\n'
           "struct b { struct a a; };\n#endif\n",
    "c.h": '#ifndef C_H\n#define C_H\n#include "b.h"\n#error "c is refused"\n#endif\n',
}


@pytest.mark.parametrize("repeats", [0, 3, 12])  # cpp writes a line marker past 8 blank lines
def test_the_output_before_the_tail_is_the_output_without_it(tmp_path, repeats):
    public = _tree(tmp_path, SMALL)
    # Headers already read make no text: the end of the output differs by blank lines.
    main = ["a.h"] + ["a.h"] * repeats
    plain = pp.run_cpp("cpp", "x86_64", "tools", public, main)
    tailed = pp.run_cpp("cpp", "x86_64", "tools", public, main, ["b.h", "c.h"])
    assert not plain.errors
    assert tailed.text == plain.text
    # each tail header meets its own #error (b.h first: c.h includes it)
    assert set(tailed.errors) == {"b.h", "c.h"}
    assert "b is refused" in tailed.errors["b.h"] and "c is refused" in tailed.errors["c.h"]


def _models(files, arch, profile, tmp: Path, guess: bool, roots=None):
    staged = pipeline.stage(files, tmp)
    return pipeline.run(files, arch, profile, "cpp", tmp, SegmentParser(), None, staged, roots)


@pytest.mark.parametrize("profile", ["tools", "guest", "guest-latest"])
def test_guessed_rejections_give_the_plain_model_on_the_real_tree(xen_tree, tmp_path, monkeypatch,
                                                                  profile):
    files = sources.from_tree(xen_tree).files
    runs: list[tuple[list[str], list[str]]] = []
    real = pp.run_cpp

    def counted(cpp, arch, prof, public, headers, tail=()):
        runs.append((list(headers), list(tail)))
        return real(cpp, arch, prof, public, headers, tail)

    monkeypatch.setattr(pp, "run_cpp", counted)
    for arch in ARCHES:
        # the plain way: no guess at all
        monkeypatch.setattr(pipeline, "_REJECTED", {})
        monkeypatch.setattr(pipeline, "_TOOLS_ONLY", {})
        with monkeypatch.context() as m:
            m.setattr(pipeline, "_likely_rejected", lambda *a: set())
            runs.clear()
            plain = _models(files, arch, profile, tmp_path / f"p-{arch}", False)
            plain_runs = [r for r in runs if len(r[0]) > 2]  # not the tools-only probes
        # the guess an earlier pass left (and, in a guest view, domctl.h's own #error)
        runs.clear()
        guessed = _models(files, arch, profile, tmp_path / f"g-{arch}", True)
        guessed_runs = [r for r in runs if len(r[0]) > 2]
        assert guessed.to_json() == plain.to_json(), (arch, profile)
        rejected = set(guessed.not_applicable) | {f.header for f in guessed.failed}
        assert rejected, (arch, profile)  # dom0_ops.h in tools, domctl.h/sysctl.h in guests
        assert len(plain_runs) >= 2
        if profile != "tools" or pipeline._REJECTED.get("tools"):
            assert len(guessed_runs) == 1, (arch, profile, guessed_runs)
            assert set(guessed_runs[0][1]) <= rejected


def test_a_wrong_guess_costs_a_run_not_a_result(xen_tree, tmp_path, monkeypatch):
    files = sources.from_tree(xen_tree).files
    monkeypatch.setattr(pipeline, "_REJECTED", {})
    plain = _models(files, "x86_64", "tools", tmp_path / "p", False)
    # vcpu.h is fine, dom0_ops.h is not: the guess is half wrong
    monkeypatch.setattr(pipeline, "_REJECTED", {"tools": frozenset({"vcpu.h", "dom0_ops.h"})})
    guessed = _models(files, "x86_64", "tools", tmp_path / "g", True)
    assert guessed.to_json() == plain.to_json()
    assert "vcpu.h" in guessed.headers and "dom0_ops.h" in {f.header for f in guessed.failed}
    assert pipeline._REJECTED["tools"] == {"dom0_ops.h"}  # the next guess is the right one


def test_partial_guest_views_with_guesses_equal_the_plain_ones(xen_tree, tmp_path, monkeypatch):
    files = sources.from_tree(xen_tree).files
    roots = ["arch-x86/hvm/save.h", "vcpu.h"]  # hvm/save.h comes in with domctl.h, refused
    for profile in ("guest", "guest-latest"):
        monkeypatch.setattr(pipeline, "_REJECTED", {})
        with monkeypatch.context() as m:
            m.setattr(pipeline, "_likely_rejected", lambda *a: set())
            plain = _models(files, "x86_64", profile, tmp_path / f"p-{profile}", False, roots)
        guessed = _models(files, "x86_64", profile, tmp_path / f"g-{profile}", True, roots)
        assert guessed.to_json() == plain.to_json()
        assert "domctl.h" in guessed.not_applicable


def test_staged_copies_are_kept_per_content_and_removed_at_the_end(xen_tree, tmp_path):
    files = dict(sources.from_tree(xen_tree).files)
    api._unstage()
    first, _ = api._staged(files)
    again, _ = api._staged(dict(files))
    assert again == first and first.is_dir()
    files["xen.h"] = files["xen.h"] + b"\n/* another snapshot */\n"
    other, _ = api._staged(files)
    assert other != first
    api._unstage()
    assert not first.exists() and not other.exists()


def test_the_guesses_survive_the_process_in_the_cache(tmp_path, monkeypatch):
    path = tmp_path / "cpp-rejects.json"
    monkeypatch.setattr(pipeline, "_REJECTED", {})
    save = pipeline.remember_rejected(path)
    pipeline._REJECTED["tools"] = frozenset({"dom0_ops.h"})
    save()
    monkeypatch.setattr(pipeline, "_REJECTED", {})
    pipeline.remember_rejected(path)
    assert pipeline._REJECTED == {"tools": {"dom0_ops.h"}}
    path.write_text("not json")
    monkeypatch.setattr(pipeline, "_REJECTED", {})
    pipeline.remember_rejected(path)()  # unreadable: no guess, and nothing to write
    assert pipeline._REJECTED == {}


def _staged_here() -> int:
    return len(api._STAGED)


def test_a_forked_worker_stages_its_own_copy(xen_tree):
    """cpp writes its wrapper into the staged copy: a worker forked after this process
    staged a snapshot must not write into the same one (it did, and an arm64 pass read
    x86 headers)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    api._staged(dict(sources.from_tree(xen_tree).files))
    assert api._STAGED
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        assert pool.submit(_staged_here).result() == 0
    api._unstage()


def test_a_fatal_error_before_the_tail_is_no_guess(tmp_path, monkeypatch):
    """cpp stops at a missing include: the tail is never reached, and the pass runs again
    the plain way (it once stopped with "cpp's output lacks the tail mark")."""
    public = _tree(tmp_path, {**SMALL, "d.h": '#include "gone.h"\nint d;\n'})
    run = pp.run_cpp("cpp", "x86_64", "tools", public, ["a.h", "d.h"], ["b.h"])
    assert not run.reached_tail and set(run.errors) == {"d.h"}
    staged = pipeline.Staged(public, {})
    files = {h: (public / h).read_bytes() for h in ("a.h", "b.h", "c.h", "d.h")}
    monkeypatch.setattr(pipeline, "_REJECTED", {"tools": frozenset({"b.h", "c.h"})})
    result = pipeline.c_pass(files, "x86_64", "tools", "cpp", tmp_path, SegmentParser(), None,
                             staged)
    assert result.headers == ("a.h",)
    assert {f.header for f in result.failed} == {"b.h", "c.h", "d.h"}


def test_forget_leaves_a_process_as_it_started(xen_tree, tmp_path):
    """A benchmark's cold run: nothing of an earlier dump is kept (it once measured a
    "cold" second run at 0.04 s: the models were still in memory)."""
    from xenpatch.abi.c import declare, macros

    src = sources.from_tree(xen_tree)
    api.forget()  # an earlier test's models would answer the dump below
    api.dump(src, ("x86_64",), cache_dir=tmp_path / "a")
    assert api._RECENT and api._STAGED and declare._LITERALS and pipeline._REJECTED
    api.forget()
    assert not (api._RECENT or api._STAGED or api._PARSERS or api._WORKERS)
    assert not (declare._LITERALS or pipeline._REJECTED or pipeline._TOOLS_ONLY)
    assert not macros.MEMO.values


def _cpp_runs(monkeypatch) -> list[tuple[str, str]]:
    """The (arch, profile) of each cpp run begun from now on."""
    runs: list[tuple[str, str]] = []
    real = pp.run_cpp

    def counted(cpp, arch, prof, *rest, **kw):
        runs.append((arch, prof))
        return real(cpp, arch, prof, *rest, **kw)

    monkeypatch.setattr(pp, "run_cpp", counted)
    return runs


def _probes_counted(monkeypatch) -> list[list[str]]:
    """The tools-only probes run from now on (cpp on xen.h and one header, tools profile)."""
    probes: list[list[str]] = []
    real = pp.run_cpp

    def counted(cpp, arch, prof, public, headers, tail=()):
        if prof == "tools" and len(headers) == 2:
            probes.append(list(headers))
        return real(cpp, arch, prof, public, headers, tail)

    monkeypatch.setattr(pp, "run_cpp", counted)
    return probes


def test_the_tools_only_probe_is_kept_by_what_it_reads(xen_tree, tmp_path, monkeypatch):
    """domctl.h's probe (xen.h and domctl.h in the tools profile) is asked again by the
    other guest view and by the next snapshot of a history: it is run once for the same
    headers, and again when one of those it reads changed."""
    files = dict(sources.from_tree(xen_tree).files)
    probes = _probes_counted(monkeypatch)
    monkeypatch.setattr(pipeline, "_TOOLS_ONLY", {})
    outside = dict(files, **{"io/ring.h": files["io/ring.h"] + b"\n/* another commit */\n"})
    inside = dict(files, **{"xen.h": files["xen.h"] + b"\n/* another commit */\n"})
    seen = []
    for i, snapshot in enumerate([files, files, outside, inside]):
        probes.clear()
        model = _models(snapshot, "x86_64", "guest", tmp_path / f"s{i}", True)
        assert "domctl.h" in model.not_applicable
        seen.append(sum(h == ["xen.h", "domctl.h"] for h in probes))
    assert seen == [1, 0, 0, 1]


def test_a_tools_pass_of_the_same_files_answers_the_probe(xen_tree, tmp_path, monkeypatch):
    """The guest views of a diff follow the tools view of the same snapshot, in the same
    process: what that pass's cpp took and refused says which headers are tools-only, and
    no probe runs; the models are those the probes give, on every arch and guest view."""
    files = dict(sources.from_tree(xen_tree).files)
    probes = _probes_counted(monkeypatch)
    for arch in ARCHES:
        for profile in ("guest", "guest-latest"):
            monkeypatch.setattr(pipeline, "_TOOLS_ONLY", {})
            probed = _models(files, arch, profile, tmp_path / f"p-{arch}-{profile}", True)
            assert probes, (arch, profile)  # domctl.h, sysctl.h: probed
            staged = pipeline.stage(files, tmp_path / f"s-{arch}-{profile}")
            pipeline.run(files, arch, "tools", "cpp", tmp_path, SegmentParser(), None, staged)
            assert staged.tools_cpp[("cpp", arch)]["domctl.h"] is True
            monkeypatch.setattr(pipeline, "_TOOLS_ONLY", {})
            probes.clear()
            answered = pipeline.run(files, arch, profile, "cpp", tmp_path, SegmentParser(), None,
                                    staged)
            assert not probes, (arch, profile)
            assert {"domctl.h", "sysctl.h"} <= set(answered.not_applicable)
            assert answered.to_json() == probed.to_json(), (arch, profile)


def test_staged_copies_of_a_killed_process_are_swept(xen_tree, tmp_path, monkeypatch):
    """A process killed with SIGKILL (the watch bot's restart test does it) leaves its
    staged copies; the next process that stages removes those whose process is gone,
    and no one else's."""
    import subprocess
    import sys
    import tempfile

    from xenpatch.abi.c import fast

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # gettempdir() caches $TMPDIR
    assert fast.scratch_dir() is None
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dead = tmp_path / f"xenpatch-abi-{gone}-abcd"
    alive = tmp_path / f"xenpatch-abi-{os.getppid()}-abcd"
    other = tmp_path / "xenpatch-abi-notmine"
    for d in (dead, alive, other):
        (d / "staged").mkdir(parents=True)
    monkeypatch.setattr(api, "_HOOKED", None)
    monkeypatch.setattr(api, "_STAGED", {})
    tmp, _ = api._staged(dict(sources.from_tree(xen_tree).files))
    assert not dead.exists() and alive.exists() and other.exists()
    assert tmp.parent == tmp_path and tmp.name.startswith(f"xenpatch-abi-{os.getpid()}-")
    api._unstage()
    assert not tmp.exists()


# -- cpp ahead (``pipeline.cpp_ahead``) --------------------------------------------------

def test_a_run_in_a_slot_is_the_run_in_the_staged_copy(xen_tree, tmp_path):
    """The same text and errors, every name read through the slot's link to public/."""
    files = dict(sources.from_tree(xen_tree).files)
    files["memory.h"] = files["memory.h"] + b'\n#error "refused here"\n'
    staged = pipeline.stage(files, tmp_path)
    headers = pp.order_headers(files, ["xen.h", "memory.h", "grant_table.h"])
    plain = pp.run_cpp("cpp", "x86_64", "tools", staged.public, headers)
    slotted = pp.run_cpp("cpp", "x86_64", "tools", staged.public, headers, (), ".cpp-test")
    assert slotted.text == plain.text and plain.text
    assert slotted.errors == plain.errors and "refused here" in plain.errors["memory.h"]
    assert (tmp_path / "staged" / ".cpp-test" / "public").resolve() == staged.public.resolve()


def test_cpp_ahead_runs_are_taken_by_the_pass_and_give_its_model(xen_tree, tmp_path,
                                                                  monkeypatch):
    """A group's next arch is preprocessed while the one before is worked on: the pass takes
    that run (no run of its own) and makes the model a plain pass makes."""
    files = sources.from_tree(xen_tree).files
    staged = pipeline.stage(files, tmp_path)
    monkeypatch.setattr(pipeline, "_REJECTED", {})
    monkeypatch.setattr(pipeline, "_AHEAD", {})
    pipeline.cpp_ahead(files, ["x86_64"], "tools", "cpp", staged)
    assert len(pipeline._AHEAD) == 1
    inline = _cpp_runs(monkeypatch)
    ahead = pipeline.run(files, "x86_64", "tools", "cpp", tmp_path, SegmentParser(), None,
                         staged)
    assert inline == [] and pipeline._AHEAD == {}
    monkeypatch.setattr(pipeline, "_REJECTED", {})
    assert ahead == pipeline.run(files, "x86_64", "tools", "cpp", tmp_path, SegmentParser(),
                                 None, staged)
    assert inline == [("x86_64", "tools")]  # the plain pass ran its own


@pytest.mark.parametrize(("profile", "rejected"), [
    ("tools", {"dom0_ops.h"}), ("guest-latest", {"dom0_ops.h", "domctl.h", "sysctl.h"}),
    ("guest", {"domctl.h", "sysctl.h"})])
def test_a_first_pass_guesses_what_cpp_rejects_from_the_headers_text(xen_tree, tmp_path,
                                                                     monkeypatch, profile,
                                                                     rejected):
    """dom0_ops.h refuses the latest interface version (tools, guest-latest), domctl.h and
    sysctl.h refuse guests: a process's first pass guesses them, and makes one cpp run
    (besides the tools-only probes of a guest view, ``_tools_only``)."""
    files = sources.from_tree(xen_tree).files
    monkeypatch.setattr(pipeline, "_REJECTED", {})
    runs = _cpp_runs(monkeypatch)
    pipeline.c_pass(files, "x86_64", profile, "cpp", tmp_path, SegmentParser(), None,
                    pipeline.stage(files, tmp_path))
    assert pipeline._REJECTED[profile] == rejected
    assert [p for _, p in runs].count(profile) == 1


def test_a_run_ahead_on_a_wrong_guess_is_not_taken(xen_tree, tmp_path, monkeypatch):
    """The arch before rejected another header: the pass's first run has other arguments
    than the one begun ahead, which it leaves, and it runs cpp itself."""
    files = sources.from_tree(xen_tree).files
    staged = pipeline.stage(files, tmp_path)
    monkeypatch.setattr(pipeline, "_REJECTED", {"tools": frozenset()})
    monkeypatch.setattr(pipeline, "_AHEAD", {})
    pipeline.cpp_ahead(files, ["x86_32"], "tools", "cpp", staged)
    pipeline._REJECTED["tools"] = frozenset({"memory.h"})  # what the arch before "rejected"
    got = pipeline.run(files, "x86_32", "tools", "cpp", tmp_path, SegmentParser(), None, staged)
    assert len(pipeline._AHEAD) == 1  # left as it was
    monkeypatch.setattr(pipeline, "_REJECTED", {})
    assert got == pipeline.run(files, "x86_32", "tools", "cpp", tmp_path, SegmentParser(), None,
                               pipeline.stage(files, tmp_path / "again"))


def test_dumps_with_cpp_ahead_equal_dumps_without(xen_tree, tmp_path, monkeypatch):
    """A dump runs each next arch's cpp ahead (here: the three after the first, one group,
    in each of two dumps); the models are the plain ones."""
    src = sources.from_tree(xen_tree)
    files = dict(src.files)
    files["xen.h"] = files["xen.h"].replace(b"#define SIF_PRIVILEGED",
                                            b"#define SIF_AHEAD (1<<9)\n#define SIF_PRIVILEGED", 1)
    patched = sources.HeaderSource("patched", None, files)
    begun: list[tuple[str, ...]] = []
    real = pipeline.cpp_ahead

    def counted(files, arches, *a, **k):  # type: ignore[no-untyped-def]
        before = len(pipeline._AHEAD)
        real(files, arches, *a, **k)
        begun.extend(arches[: len(pipeline._AHEAD) - before])

    def models(cache: Path) -> list:
        api.forget()
        return [api.dump(s, ARCHES, "guest", cache_dir=cache, jobs=1) for s in (src, patched)]

    monkeypatch.setattr(pipeline, "cpp_ahead", counted)
    ahead = models(tmp_path / "a")
    assert begun == ["arm64", "x86_32", "x86_64"] * 2
    monkeypatch.setattr(pipeline, "cpp_ahead", lambda *a, **k: None)
    assert models(tmp_path / "b") == ahead
    api.forget()
