"""Benchmark: what each speed trick of xenpatch/abi/c/fast.py buys, against the plain way, in one run.

    python bench/fast.py [--tree DIR] [--runs N]

Each line is the median of N runs of the trick and of the plain way on the
same data (the real tree's public headers, all four arches, tools profile):

* codecs: encode + decode every parsed piece of x86_64, generated per-class
  codecs against one generic walk over ``__slots__`` (same bytes out);
* collector: a cold group of two arches (``api.arch_models``, an empty
  segment store) with the collector paused against running;
* json: one arch model's JSON document written compact (the C encoder) against
  indented;
* splice: the document of four cached arch texts, pasted, against parsing
  them into models and writing the document again;
* pieces: x86_64 parsed after x86_32 by one ``SegmentParser`` (the scoped
  parser reusing pieces) against a parser that has seen nothing;
* staging: the headers written to ``fast.scratch_dir()`` against the system's
  temporary directory;
* reuse: a new process's group of two arches of the tree with a define added
  in the middle of xen.h, its base dumped before (models, pieces and passes
  on disk), against the same without the base's passes (``c.reuse``);
* moved: x86_64 with a declaration added near the top of domctl.h parsed by a
  parser holding the base's pieces, the pieces after it taken with their
  lines moved, against keying every piece by its exact text
  (``parse.movable``);
* lexer: every piece of x86_32 parsed by a fresh ``SegmentParser``, each lexed
  whole by ``fast.fast_lexer_class``'s lexer, against pycparser's own lexer;
* segments: x86_32 parsed again by a parser that holds its pieces (the second
  arch of a family, the next snapshot), its segments cut up before, against
  cutting them again (``SegmentParser._cut_up``), each piece looked up;
* segment nodes: the same, each segment's nodes taken whole from the parser's
  memo of what it parsed to in that typedef context (``_Segment.results``),
  against looking up each of its pieces.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import marshal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xenpatch.abi import api, modelcache, sources  # noqa: E402
from xenpatch.abi.c import fast, parse, pipeline, reuse  # noqa: E402
from xenpatch.abi.c import preprocess as pp  # noqa: E402
from xenpatch.abi.model import AbiModel, ArchModel, Source  # noqa: E402


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, trick: float, plain: float) -> None:
    print(f"  {name:13} trick {trick:8.4f} s   plain {plain:8.4f} s   {plain / trick:5.1f}x")


def generic_codec(nodes: list) -> bytes:
    """The plain way: one walk that reads every node's slots by name."""
    from pycparser import c_ast

    def enc(v: object) -> object:
        if type(v) is list:
            return [enc(x) for x in v]  # type: ignore[attr-defined]
        if isinstance(v, c_ast.Node):
            return (type(v).__name__, [enc(getattr(v, f)) if f != "coord" else
                                       (None if v.coord is None else
                                        (v.coord.file, v.coord.line, v.coord.column))
                                       for f in v.__slots__ if f != "__weakref__"])
        return v
    data = marshal.dumps(enc(nodes))
    classes = vars(c_ast)
    from pycparser.c_parser import Coord

    def dec(v: object) -> object:
        if type(v) is list:
            return [dec(x) for x in v]  # type: ignore[attr-defined]
        if type(v) is tuple and len(v) == 2 and isinstance(v[0], str) and v[0] in classes:
            cls = classes[v[0]]
            n = object.__new__(cls)
            for f, x in zip([f for f in cls.__slots__ if f != "__weakref__"], v[1], strict=True):
                setattr(n, f, Coord(*x) if f == "coord" and x is not None else dec(x))
            return n
        return v
    dec(marshal.loads(data))
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=Path.home() / ".cache/xenpatch/xen-4.17")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    src = sources.from_tree(args.tree)
    print(f"tree {args.tree}, median of {args.runs} runs")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        results = api.arch_models(src.files, ["x86_32", "x86_64"], "tools", "cpp", True,
                                  tmp / "warmup")
        models = dict((a, m) for a, m, _ in results)

        # codecs: the pieces of x86_64 as SegmentParser keeps them
        staged = pipeline.stage(src.files, tmp / "s")
        todo = pp.order_headers(src.files, [h for h in models["x86_64"].headers])
        text = pp.run_cpp("cpp", "x86_64", "tools", staged.public, todo).text
        seg = parse.SegmentParser()
        seg.parse(pp.split_output(text, staged.public, todo).text, pp.WRAPPER)
        pieces = list(seg._new.values())

        def codecs() -> None:
            for p in pieces:
                parse.decode(parse.encode(p))

        report("codecs", median_time(codecs, args.runs),
               median_time(lambda: [generic_codec(p[0]) for p in pieces], args.runs))

        counter = iter(range(10_000))

        def cold_group() -> None:
            api.forget()  # nothing kept from the run before (a few ms)
            api.arch_models(src.files, ["x86_32", "x86_64"], "tools", "cpp", False,
                            tmp / f"cold{next(counter)}")

        trick = median_time(cold_group, args.runs)
        paused = fast.collector_paused
        fast.collector_paused = contextlib.nullcontext  # type: ignore[assignment]
        try:
            plain = median_time(cold_group, args.runs)
        finally:
            fast.collector_paused = paused  # type: ignore[assignment]
        report("collector", trick, plain)

        doc = models["x86_64"].to_json()
        report("json", median_time(lambda: fast.compact_json(doc), args.runs),
               median_time(lambda: json.dumps(doc, sort_keys=True, indent=2), args.runs))

        four = api.arch_models(src.files, ["arm32", "arm64"], "tools", "cpp", True,
                               tmp / "warmup")
        texts = {a: t for a, _, t in [*results, *four]}
        source = Source(src.description, src.rev, "tools")

        def rebuilt() -> str:
            arches = tuple(ArchModel.from_json(a, json.loads(t)) for a, t in texts.items())
            return fast.compact_json(AbiModel(source, arches).to_json())

        assert modelcache.document_text(source, texts) == rebuilt() + "\n"
        report("splice", median_time(lambda: modelcache.document_text(source, texts), args.runs),
               median_time(rebuilt, args.runs))

        split = {}
        for arch in ("x86_32", "x86_64"):
            hs = pp.order_headers(src.files, list(models[arch].headers))
            out = pp.run_cpp("cpp", arch, "tools", staged.public, hs).text
            split[arch] = pp.split_output(out, staged.public, hs).text

        def reused() -> float:
            shared = parse.SegmentParser()
            shared.parse(split["x86_32"], pp.WRAPPER)
            start = time.perf_counter()
            shared.parse(split["x86_64"], pp.WRAPPER)
            return time.perf_counter() - start

        trick = statistics.median(reused() for _ in range(args.runs))
        report("pieces", trick, median_time(lambda: parse.parse(split["x86_64"], pp.WRAPPER),
                                            args.runs))

        def staging(where: str | None) -> Callable[[], None]:
            def run() -> None:
                with tempfile.TemporaryDirectory(dir=where) as d:
                    pp.stage(src.files, Path(d))
            return run

        report("staging", median_time(staging(fast.scratch_dir()), args.runs),
               median_time(staging(None), args.runs))

        anchor = b"#define SIF_PRIVILEGED"
        patched = dict(src.files)
        patched["xen.h"] = patched["xen.h"].replace(
            anchor, b"#define SIF_BENCH_FLAG (1<<9)\n" + anchor, 1)
        base_cache = tmp / "reuse"
        api.forget()
        api.arch_models(src.files, ["x86_32", "x86_64"], "tools", "cpp", False, base_cache)
        api._pass_store(base_cache).save()  # what the base's process does at exit
        passes = reuse.directory_under(base_cache)

        def patched_group(with_passes: bool) -> Callable[[], None]:
            def run() -> None:
                api.forget()  # a new process: only the files are left
                hidden = passes.with_name(passes.name + ".hidden")
                if not with_passes:
                    passes.rename(hidden)
                try:
                    api.arch_models(patched, ["x86_32", "x86_64"], "tools", "cpp", False,
                                    base_cache)
                finally:
                    if not with_passes:
                        hidden.rename(passes)
            return run

        report("reuse", median_time(patched_group(True), args.runs),
               median_time(patched_group(False), args.runs))
        api.forget()

        moved = dict(src.files)
        moved["domctl.h"] = moved["domctl.h"].replace(
            b"struct xen_domctl_createdomain {",
            b"struct bench_new { int a; };\nstruct xen_domctl_createdomain {", 1)
        staged_moved = pipeline.stage(moved, tmp / "m")
        hs = pp.order_headers(moved, list(models["x86_64"].headers))
        out = pp.run_cpp("cpp", "x86_64", "tools", staged_moved.public, hs).text
        moved_text = pp.split_output(out, staged_moved.public, hs).text

        def after_base() -> float:
            parser = parse.SegmentParser()
            parser.parse(split["x86_64"], pp.WRAPPER)
            start = time.perf_counter()
            parser.parse(moved_text, pp.WRAPPER)
            return time.perf_counter() - start

        trick = statistics.median(after_base() for _ in range(args.runs))
        movable = parse.movable
        parse.movable = lambda text: (text.rstrip(), 0)  # type: ignore[assignment]
        try:
            plain = statistics.median(after_base() for _ in range(args.runs))
        finally:
            parse.movable = movable  # type: ignore[assignment]
        report("moved", trick, plain)

        def fresh_parse() -> None:
            parse.SegmentParser().parse(split["x86_32"], pp.WRAPPER)

        trick = median_time(fresh_parse, args.runs)
        lexer = fast.fast_lexer_class
        fast.scoped_parser_class.cache_clear()
        fast.fast_lexer_class = lambda: None  # type: ignore[assignment]
        try:
            plain = median_time(fresh_parse, args.runs)
        finally:
            fast.fast_lexer_class = lexer  # type: ignore[assignment]
            fast.scoped_parser_class.cache_clear()
        report("lexer", trick, plain)

        holding = parse.SegmentParser()
        holding.parse(split["x86_32"], pp.WRAPPER)

        def again(cut: bool, nodes: bool) -> Callable[[], None]:
            def run() -> None:
                if not cut:
                    holding._cut.clear()
                    holding._rewritten.clear()
                if not nodes:
                    for segment in holding._cut.values():
                        segment.results.clear()
                holding.parse(split["x86_32"], pp.WRAPPER)
            return run

        report("segments", median_time(again(True, False), args.runs),
               median_time(again(False, False), args.runs))
        report("segment nodes", median_time(again(True, True), args.runs),
               median_time(again(True, False), args.runs))


if __name__ == "__main__":
    main()
