"""Benchmark: `xenpatch abi history RELEASE-4.21.0..RELEASE-4.22.0` (15 commits), cold and warm, and a
one-header patch dumped on a cached base.

    python bench/abi_history.py [--git DIR] [--range A..B] [--runs N]

Cold: the whole `xenpatch abi history` process (4 arches, every view the
interface rules need) with an empty cache; warm: the same command again;
overlap: a range sharing all but its first commit with the cold one, on the
warm cache (it should parse nothing new).  Patched: `abi dump --headers` of the
range's last snapshot with one define added to xen.h, after the snapshot
itself was dumped (what `generate` and `review` do on a cached base).
Baseline in the same run: `git log --reverse -p` of the range's public
headers (reading the commits is the floor).  Targets (issue 9): cold <= 20 s,
warm <= 2 s, patched <= 0.4 s.
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
from pathlib import Path

from bytecode import compile_package  # bench/bytecode.py (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xenpatch.abi import sources  # noqa: E402

XEN_GIT = Path(os.environ.get("XENPATCH_XEN_GIT", "/work/.mirror/xen-project+xen/repo"))


def xenpatch(args: list[str], cache: Path) -> tuple[float, str]:
    env = dict(os.environ, XENPATCH_ABI_CACHE=str(cache), PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", *args], env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"xenpatch {' '.join(args)} failed: {proc.stderr.strip()}")
    return elapsed, (proc.stdout.strip().splitlines() or [""])[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--git", type=Path, default=XEN_GIT)
    ap.add_argument("--range", default="RELEASE-4.21.0..RELEASE-4.22.0")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    compile_package()
    if not (args.git / "HEAD").exists():
        sys.exit(f"no xen.git at {args.git} (fetch xen-project/xen, or --git DIR)")
    git = ["git", "--git-dir", str(args.git)]
    shas = subprocess.run([*git, "rev-list", "--reverse", args.range, "--",
                           "xen/include/public"], check=True, capture_output=True,
                          text=True).stdout.split()
    head = args.range.split("..")[1]
    hist = ["abi", "history", args.range, "--tree", str(args.git)]
    overlap = ["abi", "history", f"{shas[0]}..{head}", "--tree", str(args.git)]
    cold, warm, over, patched, floor = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-abihistory-") as t:
        tmp = Path(t)
        for run in range(args.runs):
            start = time.perf_counter()
            subprocess.run([*git, "log", "--reverse", "-p", args.range, "--",
                            "xen/include/public"], check=True, capture_output=True)
            floor.append(time.perf_counter() - start)
            cache = tmp / f"cache-{run}"
            c, summary = xenpatch(hist, cache)
            cold.append(c)
            warm.append(xenpatch(hist, cache)[0])
            models = sorted(p.name for p in cache.rglob("*.json"))
            over.append(xenpatch(overlap, cache)[0])
            assert sorted(p.name for p in cache.rglob("*.json")) == models, \
                "the overlapping range dumped a snapshot again"
            snap = tmp / f"snap-{run}"
            src = sources.from_tree(args.git, head)
            for rel, data in src.files.items():
                (snap / rel).parent.mkdir(parents=True, exist_ok=True)
                (snap / rel).write_bytes(data)
            xenpatch(["abi", "dump", "--headers", str(snap), "-o", os.devnull], cache)
            with open(snap / "xen.h", "ab") as f:
                f.write(b"\n#define XENPATCH_BENCH_FLAG (1<<5)\n")
            patched.append(xenpatch(["abi", "dump", "--headers", str(snap), "-o", os.devnull],
                                    cache)[0])
            shutil.rmtree(snap)
    med = statistics.median
    print(f"abi history {args.range}: {len(shas)} commits touch xen/include/public; {summary}")
    print(f"baseline: git log -p of those commits {med(floor):6.2f} s")
    for name, values, target in (("cold", cold, 20.0), ("warm", warm, 2.0),
                                 ("overlapping range, warm", over, 2.0),
                                 ("one-header patch on a cached base (abi dump)", patched, 0.4)):
        v = med(values)
        print(f"{name:<46} {v:6.2f} s  ({v / med(floor):6.1f}x git log; target <= {target} s: "
              f"{'met' if v <= target else 'NOT met'})")


if __name__ == "__main__":
    main()
