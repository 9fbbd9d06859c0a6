"""Benchmark: `xenpatch abi dump` of every public header on 4 arches, cold and warm, against
the compiler-probe approach (gcc -m32/-m64, clang --target for arm) on the same tree.

    python bench/abi_dump.py [--tree DIR] [--runs N]

Cold: the whole `xenpatch abi dump` process with an empty cache.  Warm: the
same with the cache filled.  Compilers: for each arch, compile the probe that
asks the compiler every size, alignment, offset, bit-field, enumerator and
macro value of the model, plus the probe that tries the macros the model
could not evaluate (the work a compiler-based dump needs at the least; the
list of questions is given to it for free), all arches in parallel on all
cores, like the dump.  Targets (issue 2): cold at least 2x faster than the
compilers; warm under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xenpatch.abi import api, probe, sources  # noqa: E402
from xenpatch.abi import preprocess as pp  # noqa: E402
from xenpatch.abi.model import ARCHES  # noqa: E402


def dump_process(tree: Path, cache: Path) -> float:
    env = dict(os.environ, XENPATCH_ABI_CACHE=str(cache), PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", "abi", "dump", "--tree", str(tree),
                           "-o", os.devnull], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"abi dump failed: {proc.stderr.strip()}")
    return elapsed


def compilers(src: sources.HeaderSource, model, tmp: Path) -> float:
    probes = []
    for arch in model.arches:
        public = pp.stage(src.files, tmp / arch.arch)
        probes.append((probe.build_probe(arch, pp.order_headers(src.files, list(arch.headers))),
                       public))
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
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=Path.home() / ".cache/xenpatch/xen-4.17")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    src = sources.from_tree(args.tree)
    print(f"tree {args.tree}: {len(src.headers)} public headers x {len(ARCHES)} arches, "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        cold = [dump_process(args.tree, tmp / f"cold{i}") for i in range(args.runs)]
        warm = [dump_process(args.tree, tmp / "cold0") for _ in range(args.runs + 2)]
        model = api.dump(src, cache_dir=tmp / "cold0")
        comp = [compilers(src, model, tmp / f"cc{i}") for i in range(args.runs)]
    c, w, k = statistics.median(cold), statistics.median(warm), statistics.median(comp)
    print(f"cold abi dump (process):  {c:6.2f} s  (runs: {', '.join(f'{x:.2f}' for x in cold)})")
    print(f"warm abi dump (process):  {w:6.2f} s  (runs: {', '.join(f'{x:.2f}' for x in warm)})")
    print(f"compiler probes:          {k:6.2f} s  (runs: {', '.join(f'{x:.2f}' for x in comp)})")
    print(f"ratio compilers/cold: {k / c:.2f}x (target >= 2)   warm: {w:.2f} s (target < 0.5)")


if __name__ == "__main__":
    main()
