"""Benchmark: `xenpatch abi diff RELEASE-4.21.0 RELEASE-4.22.0` on 4 arches, cold and warm, against
the libabigail pipeline on the same snapshots in the same run.

    python bench/abi_diff.py [--git DIR] [--old REV] [--new REV] [--runs N]

Snapshots: the public headers of OLD and NEW read from xen.git (``--git``,
default /work/.mirror/xen-project+xen/repo or $XENPATCH_XEN_GIT); without
xen.git, the fetched 4.17.5 tree against Debian's 4.20 libxen-dev headers.

xenpatch: the whole `xenpatch abi diff` process, given the two revisions
(--tree) and given the two snapshot directories; both rate every change by
Xen's interface rules (the guest views of each side, and with revisions the
release tag's tools view).  Cold: empty cache (no models, no parsed pieces);
warm: the same command again.  "engine": the tools-view dumps and the diff
alone, in this process, cold: the part abidiff can be compared with.

libabigail (Debian's abigail-tools): per arch, a C file that includes every
header and defines one object of every public type (the list taken from the
xenpatch model, for free), compiled with `gcc -g` (`clang -g --target` for
arm) for each snapshot, `abidw` of each object, `abidiff` of the two; the 4
arches on 2 workers, as xenpatch uses both cores.  abidiff has no cache, so
its warm time is its cold time.

Targets (issue 9): cold at least 2x faster than the pipeline, warm at least 10x.
"""

from __future__ import annotations

import argparse
import os
import re
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

from xenpatch.abi import api, diff, sources  # noqa: E402
from xenpatch.abi.c import preprocess as pp  # noqa: E402
from xenpatch.abi.model import ARCHES  # noqa: E402

XEN_GIT = Path(os.environ.get("XENPATCH_XEN_GIT", "/work/.mirror/xen-project+xen/repo"))


def xenpatch_diff(args: list[str], cache: Path) -> tuple[float, str]:
    env = dict(os.environ, XENPATCH_ABI_CACHE=str(cache), PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", "abi", "diff", *args],
                          env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"abi diff failed: {proc.stderr.strip()}")
    return elapsed, proc.stdout.strip().splitlines()[-1]


def write_snapshot(src: sources.HeaderSource, dest: Path) -> Path:
    for rel, data in src.files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    return dest


def uses_every_type(src: sources.HeaderSource, model, arch: str) -> str:
    """The C file for ARCH: every header, one object of every public type."""
    am = model.arch_map[arch]
    lines = list(pp.PRELUDE) + [f'#include "{h}"' for h in pp.order_headers(
        src.files, list(am.headers))]
    for t in am.types:
        if ":" in t.name:  # anonymous enums have no C name
            continue
        lines.append(f"{t.name} xp_use_{re.sub(r'[^A-Za-z0-9_]', '_', t.name)};")
    return "\n".join(lines) + "\n"


def abigail_arch(arch: str, snaps: list[tuple[sources.HeaderSource, object]], tmp: Path) -> str:
    """gcc -g, abidw for both snapshots, abidiff: abidiff's summary lines."""
    outs = []
    for i, (src, model) in enumerate(snaps):
        work = tmp / f"{arch}-{i}"
        public = pp.stage(src.files, work)
        c = work / "use.c"
        c.write_text(uses_every_type(src, model, arch))
        obj = work / "use.o"
        argv = [*probe.COMPILERS[arch], "-std=gnu11", "-nostdinc", "-w", "-c", "-g", "-O0",
                "-fno-common", "-I", str(public), "-I", str(work), "-I", str(pp.INCLUDE_DIR)]
        argv += [f"-D{n}={v}" for n, v in pp.PROFILE_DEFINES["tools"]]
        subprocess.run([*argv, "-o", str(obj), str(c)], check=True, capture_output=True)
        abi = work / "use.abi"
        subprocess.run(["abidw", "--out-file", str(abi), str(obj)], check=True,
                       capture_output=True)
        outs.append(abi)
    proc = subprocess.run(["abidiff", str(outs[0]), str(outs[1])], capture_output=True, text=True)
    summary = [ln.strip() for ln in proc.stdout.splitlines() if "summary" in ln]
    return f"{arch}: exit {proc.returncode}; " + "; ".join(summary)


def abigail(snaps: list[tuple[sources.HeaderSource, object]], tmp: Path) -> tuple[float, list[str]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = list(pool.map(lambda a: abigail_arch(a, snaps, tmp / "abigail"), ARCHES))
    return time.perf_counter() - start, found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--git", type=Path, default=XEN_GIT)
    ap.add_argument("--old", default="RELEASE-4.21.0")
    ap.add_argument("--new", default="RELEASE-4.22.0")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    compile_package()
    for tool in ("abidw", "abidiff", "gcc", "clang"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt-get install abigail-tools gcc-multilib clang)")
    with tempfile.TemporaryDirectory(prefix="bench-abidiff-") as t:
        tmp = Path(t)
        if (args.git / "HEAD").exists():
            srcs = [sources.from_tree(args.git, r) for r in (args.old, args.new)]
            label = f"{args.old} -> {args.new} (xen.git)"
            rated = [args.old, args.new, "--tree", str(args.git)]
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            fetch = ROOT / "scripts" / "fetch_xen.py"
            got = [subprocess.run([sys.executable, str(fetch), n], check=True, text=True,
                                  capture_output=True).stdout.split()[1]
                   for n in ("xen-4.17", "headers-4.20")]
            srcs = [sources.from_tree(Path(got[0])), sources.from_headers_dir(Path(got[1]))]
            label = "4.17.5 tree -> libxen-dev 4.20 headers (no xen.git)"
            rated = []
        dirs = [write_snapshot(s, tmp / f"snap{i}") for i, s in enumerate(srcs)]
        print(f"snapshots: {label}; arches: {','.join(ARCHES)}")
        plain = [str(d) for d in dirs]
        cold, warm, cold_plain, warm_plain, abig, engine = [], [], [], [], [], []
        for run in range(args.runs):
            for what, c_out, w_out in ((rated, cold, warm), (plain, cold_plain, warm_plain)):
                if not what:
                    continue
                cache = tmp / f"cache-{run}-{len(c_out)}-{id(what)}"
                c, c_summary = xenpatch_diff(what, cache)
                w, w_summary = xenpatch_diff(what, cache)
                assert c_summary == w_summary
                c_out.append((c, c_summary))
                w_out.append((w, w_summary))
            # The engine alone, in this process: the tools view of both sides and the diff
            # (what abidiff is compared with: no guest views, no release tag).
            api.forget()  # cold: nothing from an earlier run in this process or its workers
            start = time.perf_counter()
            models = [api.dump(s, ARCHES, "tools", cache_dir=tmp / f"models-{run}") for s in srcs]
            found = diff.diff_models(*models)
            engine.append((time.perf_counter() - start, diff.changes_text(found).splitlines()[-1]))
            seconds, found = abigail(list(zip(srcs, models, strict=True)), tmp / f"a{run}")
            abig.append((seconds, found))
        base = statistics.median(s for s, _ in abig)
        print(f"\nabidw + abidiff pipeline: {base:6.2f} s (median of {args.runs})")
        for line in abig[-1][1]:
            print(f"    {line}")
        print("    (abidiff sees types and objects only: no macros, no enumerator-only names)")
        e = statistics.median(s for s, _ in engine)
        print(f"\nxenpatch engine in-process, tools view only, cold: {e:6.2f} s "
              f"({base / e:5.2f}x the pipeline's speed); found: {engine[-1][1]}")
        for name, c_out, w_out in (("xenpatch abi diff REV REV --tree (interface rules, "
                                    "release tag)", cold, warm),
                                   ("xenpatch abi diff DIR DIR (interface rules, no tag)",
                                    cold_plain, warm_plain)):
            if not c_out:
                continue
            c = statistics.median(s for s, _ in c_out)
            w = statistics.median(s for s, _ in w_out)
            print(f"\n{name}:\n    found: {c_out[-1][1]}")
            print(f"    cold {c:6.2f} s: {base / c:5.2f}x the pipeline's speed "
                  f"(target >= 2x: {'met' if base / c >= 2 else 'NOT met'})")
            print(f"    warm {w:6.2f} s: {base / w:5.2f}x the pipeline's speed "
                  f"(target >= 10x: {'met' if base / w >= 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
