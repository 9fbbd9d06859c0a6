"""Benchmark: `xenpatch review` of a 3-patch series on a real Xen tree (mbox in, JSON and reply out).

Times the whole process (``python -m xenpatch.cli review``) with a cold ABI
cache (an empty cache: the base's and the result's models are computed) and
with the base's model cached (an earlier ``abi dump`` of the base, the usual
case for a reviewer or the bot), each the median of ``--runs`` runs, for
``--format json`` and ``--format email``, against the targets (8 s cold, 3 s
base cached), and, as a baseline in the same run, ``git am`` of the same
mbox in a scratch clone (sparse checkout of the touched files, as review does).

    python bench/review.py [--tree DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import compile_package  # bench/bytecode.py (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"cold": 8.0, "base cached": 3.0}
ANCHOR = "                                   /* P->M making the 3 level tree obsolete? */\n"


def fetched_tree() -> Path:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_xen.py"), "xen-4.17"],
                         capture_output=True, text=True, check=True).stdout
    return Path(out.split()[1])


CPU: list[float] = []  # CPU seconds (user + system) of each run's process and its children


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None, ok: tuple[int, ...] = (0,)) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if proc.returncode not in ok:
        sys.exit(f"bench: {' '.join(argv[:5])}... exited {proc.returncode}: {proc.stderr.strip()}")
    return elapsed


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def make_series(tree: Path, work: Path, env: dict[str, str]) -> tuple[Path, list[str]]:
    """Three commits (a public flag, its hypervisor side, the toolstack side) as one mbox."""
    clone = work / "author"
    subprocess.run(["git", "clone", "-q", "--shared", str(tree), str(clone)], check=True, env=env)
    steps = [
        ("xen/include/public/xen.h", ANCHOR,
         ANCHOR + "#define SIF_BENCH_FLAG    (1<<5)  /* A flag for the benchmark. */\n",
         "xen/public: add SIF_BENCH_FLAG"),
        ("xen/common/kernel.c", "#include <xen/init.h>\n",
         "#include <xen/init.h>\n#include <public/xen.h>\n", "xen/common: include public/xen.h"),
        ("tools/libs/light/libxl_create.c", "#include \"libxl_osdeps.h\"",
         "#include \"libxl_osdeps.h\" /* SIF_BENCH_FLAG */", "tools/libxl: mention SIF_BENCH_FLAG"),
    ]
    for path, old, new, subject in steps:
        edit(clone / path, old, new)
        subprocess.run(["git", "-C", str(clone), "commit", "-q", "-a", "-s", "-m", subject],
                       check=True, env=env)
    out = work / "patches"
    subprocess.run(["git", "-C", str(clone), "format-patch", "-q", "--cover-letter", "--thread",
                    "--base=HEAD~3", "-o", str(out), "HEAD~3..HEAD"], check=True, env=env)
    mbox = work / "series.mbox"
    files = sorted(out.glob("*.patch"))
    mbox.write_bytes(b"".join(p.read_bytes() for p in files))
    # git am is given the patches without the cover letter (it has no diff).
    (work / "patches.mbox").write_bytes(b"".join(p.read_bytes() for p in files[1:]))
    return mbox, [s[0] for s in steps]


def git_am(tree: Path, mbox: Path, paths: list[str], work: Path, env: dict[str, str], i: int) -> float:
    clone = work / f"am{i}"
    start = time.perf_counter()
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(tree), str(clone)],
                   check=True, env=env)
    subprocess.run(["git", "-C", str(clone), "sparse-checkout", "set", "--no-cone",
                    *[f"/{p}" for p in paths]], check=True, env=env)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", "--detach", "HEAD"], check=True, env=env)
    subprocess.run(["git", "-C", str(clone), "am", "-q", "--3way", str(mbox)], check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    compile_package()
    tree = args.tree or fetched_tree()
    with tempfile.TemporaryDirectory(prefix="xenpatch-bench-review-") as tmp:
        work = Path(tmp)
        gitcfg = work / "gitconfig"
        gitcfg.write_text("[user]\n\tname = Bench Author\n\temail = bench@example.org\n")
        env = {**os.environ, "GIT_CONFIG_GLOBAL": str(gitcfg), "PYTHONPATH": str(ROOT),
               "XENPATCH_TREE_PATH": str(tree), "XENPATCH_SERIES_DATE": "2026-01-09T09:00:00Z"}
        mbox, paths = make_series(tree, work, env)
        review = [sys.executable, "-m", "xenpatch.cli", "-q", "review", str(mbox)]
        times: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for i in range(args.runs):
            for fmt in ("json", "email"):
                cold = {**env, "XENPATCH_ABI_CACHE": str(work / f"cold-{fmt}-{i}")}
                times.setdefault(("cold", fmt), []).append(
                    run([*review, "--format", fmt, "-o", str(work / f"out.{fmt}")], cold))
                cpu.setdefault(("cold", fmt), []).append(CPU[-1])
                cached = {**env, "XENPATCH_ABI_CACHE": str(work / f"base-{fmt}-{i}")}
                run([sys.executable, "-m", "xenpatch.cli", "-q", "abi", "dump", "--rev", "HEAD",
                     "-o", os.devnull], cached)
                times.setdefault(("base cached", fmt), []).append(
                    run([*review, "--format", fmt, "-o", str(work / f"out.{fmt}")], cached))
                cpu.setdefault(("base cached", fmt), []).append(CPU[-1])
        am = statistics.median(git_am(tree, work / "patches.mbox", paths, work, env, i)
                               for i in range(args.runs))
    print(f"tree: {tree}; series: 3 patches + cover ({', '.join(paths)}); "
          f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"baseline git am --3way (scratch clone, sparse checkout): {am:.2f} s (median of {args.runs})")
    for (case, fmt), values in times.items():
        value = statistics.median(values)
        target = TARGETS[case]
        verdict = "met" if value <= target else "NOT met"
        print(f"review --format {fmt:5} {case + ':':12} {value:6.2f} s  ({value / am:5.1f} x git am; "
              f"target {target:.0f} s: {verdict}; runs: {', '.join(f'{v:.2f}' for v in values)}; "
              f"CPU {statistics.median(cpu[(case, fmt)]):.2f} s)")


if __name__ == "__main__":
    main()
