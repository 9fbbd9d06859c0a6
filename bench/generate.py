"""Benchmark: `xenpatch generate` end to end on a real Xen tree, without the build check.

Times the whole process (``python -m xenpatch.cli generate``) with a cold ABI
cache (an empty ``XDG_CACHE_HOME``: both the base's and the result's models
are computed), with only the base's model (and its parsed pieces) cached
(the usual first run), and warm (a rerun), each the median of ``--runs``
runs, against the 5 s target,
and, as a baseline in the same run, a plain ``git format-patch`` of the same
series (applied with ``git am`` in a scratch clone first).

    python bench/generate.py [--tree DIR] [--runs N]

The tree defaults to Xen 4.17.5 fetched by scripts/fetch_xen.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import compile_package  # bench/bytecode.py (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
TARGET = 5.0
EPOCH = "1767225600"


def fetched_tree() -> Path:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_xen.py"), "xen-4.17"],
                         capture_output=True, text=True, check=True).stdout
    return Path(out.split()[1])


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[:4])}... failed: {proc.stderr.strip()}")
    return elapsed


def generate(tree: Path, out: Path, env: dict[str, str]) -> float:
    return timed([sys.executable, "-m", "xenpatch.cli", "-q", "generate", "--tree", str(tree),
                  "--out", str(out)], env)


def baseline(tree: Path, series: Path, work: Path, env: dict[str, str]) -> float:
    """git format-patch of the same series, applied by git am in a scratch clone."""
    clone = work / "baseline"
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(tree), str(clone)],
                   check=True, env=env)
    patches = sorted(str(p) for p in series.glob("0*.patch") if not p.name.startswith("0000"))
    touched = subprocess.run(["sh", "-c", "grep -h '^+++ b/' " + " ".join(patches)],
                             capture_output=True, text=True).stdout.split()
    paths = sorted({"/" + p[2:] for p in touched if p.startswith("b/")})
    subprocess.run(["git", "-C", str(clone), "sparse-checkout", "set", "--no-cone", *paths],
                   check=True, env=env)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", "-b", "bench", "HEAD"],
                   check=True, env=env)
    subprocess.run(["git", "-C", str(clone), "am", "-q", *patches], check=True, env=env)
    n = len(patches)
    return timed(["git", "-C", str(clone), "format-patch", "-q", "--cover-letter", "-o",
                  str(work / "baseline-out"), f"HEAD~{n}..HEAD"], env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path)
    ap.add_argument("--runs", type=int, default=3, help="runs of each case (median reported)")
    args = ap.parse_args()
    compile_package()
    tree = args.tree or fetched_tree()
    with tempfile.TemporaryDirectory(prefix="xenpatch-bench-") as tmp:
        work = Path(tmp)
        gitcfg = work / "gitconfig"
        gitcfg.write_text("[user]\n\tname = Bench\n\temail = bench@example.org\n")
        env = {**os.environ, "GIT_CONFIG_GLOBAL": str(gitcfg), "SOURCE_DATE_EPOCH": EPOCH,
               "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(work / "cache")}
        colds, firsts = [], []
        for i in range(args.runs):
            env_cold = {**env, "XDG_CACHE_HOME": str(work / f"cache{i}")}
            colds.append(generate(tree, work / f"cold{i}", env_cold))
            # The usual first run: the base's model is cached (an earlier `abi dump`
            # or generate), the result's is new.
            env_base = {**env, "XDG_CACHE_HOME": str(work / f"cache-base{i}")}
            timed([sys.executable, "-m", "xenpatch.cli", "abi", "dump", "--tree", str(tree),
                   "-o", str(work / "base.json")], env_base)
            firsts.append(generate(tree, work / f"first{i}", env_base))
        env_warm = {**env, "XDG_CACHE_HOME": str(work / "cache0")}
        warms = [generate(tree, work / f"warm{i}", env_warm) for i in range(args.runs)]
        cold, first, warm = (statistics.median(r) for r in (colds, firsts, warms))
        base = baseline(tree, work / "cold0", work, env)
    print(f"tree: {tree}")
    for label, value, runs in (("cold ABI cache", cold, colds), ("base cached", first, firsts),
                               ("warm ABI cache", warm, warms)):
        print(f"generate, {label + ':':15} {value:6.2f} s  ({value / TARGET:.2f} x the "
              f"{TARGET:.0f} s target; median of {len(runs)}: "
              f"{', '.join(f'{r:.2f}' for r in runs)})")
    print(f"baseline git format-patch: {base:6.2f} s  (generate warm = {warm / base:.0f} x baseline)")


if __name__ == "__main__":
    main()
