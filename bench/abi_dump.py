"""Benchmark: `xenpatch abi dump` of every public header on 4 arches, cold and warm, against
the compiler-probe approach (gcc -m32/-m64, clang --target for arm) on the same tree.

    python bench/abi_dump.py [--tree DIR] [--runs N]

Cold: the whole `xenpatch abi dump` process with an empty cache (no models,
no parsed pieces).  Warm: the same with the cache filled.  Patched: a copy
of the headers with one define added to xen.h (what `generate` dumps after
the base), with the base's cache filled: its model is new, its pieces
mostly are not.  Compilers: for each arch, compile the probe that asks the
compiler every size, alignment, offset, bit-field, enumerator and macro
value of the model, plus the probe that tries the macros the model could
not evaluate, and read the values back from the ELF; all arches in parallel
on all cores, like the dump.  The list of questions is given to the
compilers for free (the headline ratio); the time to build the probes
from the model is printed too.  Stages: where a cold and a patched run
spend their time, in one process (each worker's group of arches, as
`abi dump` splits them).  Targets (issue 2): cold at least 2x faster than
the compilers; warm under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bytecode import compile_package  # bench/bytecode.py (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the compiler probe lives with the tests

import probe  # noqa: E402

from xenpatch.abi import api, sources  # noqa: E402
from xenpatch.abi.c import pipeline  # noqa: E402
from xenpatch.abi.c import preprocess as pp  # noqa: E402
from xenpatch.abi.model import ARCHES  # noqa: E402

NEW_DEFINE = b"\n#define XENPATCH_BENCH_FLAG (1<<5)\n"


def dump_process(what: list[str], cache: Path) -> float:
    env = dict(os.environ, XENPATCH_ABI_CACHE=str(cache), PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", "abi", "dump", *what,
                           "-o", os.devnull], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"abi dump failed: {proc.stderr.strip()}")
    return elapsed


def patched_headers(tree: Path, dest: Path) -> Path:
    shutil.copytree(tree / "xen/include/public", dest)
    with open(dest / "xen.h", "ab") as f:
        f.write(NEW_DEFINE)
    return dest


def patched_run(tree: Path, headers: Path, cache: Path) -> float:
    dump_process(["--tree", str(tree)], cache)  # the base: models and pieces cached
    return dump_process(["--headers", str(headers)], cache)


def compilers(src: sources.HeaderSource, model, tmp: Path) -> tuple[float, float]:
    """(seconds to compile the probes and read them back, seconds to build them)."""
    start = time.perf_counter()
    probes = []
    for arch in model.arches:
        public = pp.stage(src.files, tmp / arch.arch)
        probes.append((probe.build_probe(arch, pp.order_headers(src.files, list(arch.headers))),
                       public))
    built = time.perf_counter() - start
    start = time.perf_counter()

    def one(job):
        p, public = job
        return probe.run_probe(p, model.source.profile, public)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outcomes = list(pool.map(one, probes))
    elapsed = time.perf_counter() - start
    checked = sum(o.checked for o in outcomes)
    print(f"  compilers checked {checked} values, {sum(len(o.disagreements) for o in outcomes)}"
          " disagreements")
    return elapsed, built


def stages(src: sources.HeaderSource, cache: Path) -> dict[str, float]:
    """Seconds per stage of each worker's arches (as api._groups splits them), in order."""
    out: dict[str, float] = {}
    for group in api._groups(ARCHES, os.cpu_count() or 1):
        clock = pipeline.Clock()
        api.forget()  # nor what this process kept from the group before
        start = time.perf_counter()
        # each group its own cache, as each worker of a cold run starts without the
        # other's pieces
        api.arch_models(src.files, group, "tools", "cpp", False, cache / "+".join(group), clock)
        wall = time.perf_counter() - start
        for name, sec in clock.seconds.items():
            out[f"{'+'.join(group)} {name}"] = sec
        out[f"{'+'.join(group)} total"] = wall
    return out


def print_stages(title: str, runs: list[dict[str, float]]) -> None:
    print(title + " (median seconds per worker group, in one process):")
    groups: dict[str, dict[str, float]] = {}
    for key in runs[0]:
        group, name = key.split(" ")
        groups.setdefault(group, {})[name] = statistics.median(r[key] for r in runs)
    for group, secs in groups.items():
        cells = "  ".join(f"{n} {s:.3f}" for n, s in secs.items() if n != "total")
        print(f"  {group:14} total {secs['total']:.3f}:  {cells}")


def fmt(runs: list[float]) -> str:
    return f"{statistics.median(runs):6.2f} s  (runs: {', '.join(f'{x:.2f}' for x in runs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=Path.home() / ".cache/xenpatch/xen-4.17")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    compile_package()
    src = sources.from_tree(args.tree)
    print(f"tree {args.tree}: {len(src.headers)} public headers x {len(ARCHES)} arches, "
          f"{os.cpu_count()} cores")
    tree = ["--tree", str(args.tree)]
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        headers = patched_headers(args.tree, tmp / "patched-public")
        patched_src = sources.from_headers_dir(headers)
        cold, patched, cold_stages, patched_stages = [], [], [], []
        for i in range(args.runs):
            cold.append(dump_process(tree, tmp / f"cold{i}"))
            patched.append(patched_run(args.tree, headers, tmp / f"patched{i}"))
            cold_stages.append(stages(src, tmp / f"stages{i}"))
            patched_stages.append(stages(patched_src, tmp / f"stages{i}"))
        warm = [dump_process(tree, tmp / "cold0") for _ in range(args.runs + 2)]
        model = api.dump(src, cache_dir=tmp / "cold0")
        comp = [compilers(src, model, tmp / f"cc{i}") for i in range(args.runs)]
    c, w, p = statistics.median(cold), statistics.median(warm), statistics.median(patched)
    k = statistics.median(x for x, _ in comp)
    b = statistics.median(y for _, y in comp)
    print_stages("cold stages", cold_stages)
    print_stages("patched stages (base cached)", patched_stages)
    print(f"cold abi dump (process):        {fmt(cold)}")
    print(f"patched, base cached (process): {fmt(patched)}")
    print(f"warm abi dump (process):        {fmt(warm)}")
    print(f"compiler probes:                {fmt([x for x, _ in comp])}"
          f"  (+ {b:.2f} s to build the probes from the model)")
    verdict = "met" if k / c >= 2 else (
        f"NOT met: cold is {c / k:.1f}x SLOWER than the compilers" if c > k
        else "NOT met: faster than the compilers, but not 2x")
    print(f"ratio compilers/cold: {k / c:.2f}x (target >= 2: {verdict}); "
          f"with probe building {(k + b) / c:.2f}x")
    print(f"ratio compilers/patched: {k / p:.2f}x   warm: {w:.2f} s (target < 0.5: "
          f"{'met' if w < 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
