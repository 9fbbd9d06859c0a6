"""Benchmark: ``xenpatch watch --once`` over a real public-inbox with 200 messages (series and
replies), a cold pass and a second pass, against ``xenpatch --version`` (the process start
every pass pays) in the same run.

    python bench/watch.py [--series N] [--abi N]

The inbox is made by Debian's public-inbox (``public-inbox-init -V2``,
``public-inbox-mda``) in a temporary directory; the series are real commits
on the Xen 4.17.5 tree (``scripts/fetch_xen.py``), mailed as ``git
format-patch --thread`` mails: --series series of a cover letter and two
patches, --abi of them adding a SIF_ flag to xen.h (ABI work: the others
touch docs only), and two replies per series, so 5 messages a series.
Printed: the cold pass and the time per series, the second pass over the
v2 mirror and over HTTP (new.atom from public-inbox-httpd), and the ratios
to the process start.  Target: the second pass under 1 s.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import compile_package  # bench/bytecode.py (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import pinbox  # noqa: E402
from watchkit import (  # noqa: E402
    bare_tree,
    commit_edit,
    config_file,
    flag_series,
    git,
    message_id,
    series_mails,
)

from xenpatch import xentree  # noqa: E402


def reply(to: bytes, n: int) -> bytes:
    mid = message_id(to)
    subject = next(line for line in to.split(b"\n") if line.startswith(b"Subject:"))[9:]
    return (f"From: Reviewer {n} <r{n}@example.org>\nTo: xen-devel@lists.xenproject.org\n"
            f"Subject: Re: {subject.decode()}\nMessage-ID: <reply-{n}-{mid}>\n"
            f"In-Reply-To: <{mid}>\nReferences: <{mid}>\n"
            "Date: Fri, 27 Nov 2026 13:00:00 +0000\n\nLooks fine to me.\n").encode()


def build(work: Path, series: int, abi: int) -> tuple[pinbox.PublicInbox, Path, int]:
    tree = bare_tree(xentree.fetched_path(), work / "tree.git")
    base = git(tree, "rev-parse", "HEAD").strip()
    inbox = pinbox.PublicInbox(work / "pi")
    count = 0
    for i in range(series):
        if i < abi:
            tip = flag_series(tree, base, f"SIF_BENCH_{i}", 5 + i % 3, 1)
        else:
            one = commit_edit(tree, base, {"README": ("Xen", f"The Xen {i}")},
                              f"README: wording {i}\n\nSigned-off-by: Ada Tester <ada@example.org>")
            tip = commit_edit(tree, one, {"COPYING": ("GNU", f"The GNU {i}")},
                              f"COPYING: wording {i}\n\nSigned-off-by: Ada Tester <ada@example.org>")
        mails = series_mails(tree, base, tip, cover=f"Bench series {i}")
        mails += [reply(mails[1], 2 * i), reply(mails[2], 2 * i + 1)]
        for m in mails:
            inbox.add(m)
        count += len(mails)
    return inbox, config_file(work, tree, work / "abicache"), count


def pass_time(stderr: str) -> float:
    """The pass's own time, as the watcher logs it ("pass done: ... in S s")."""
    found = re.findall(r"pass done: .* in (\d+\.\d+) s", stderr)
    return float(found[-1]) if found else float("nan")


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    return time.perf_counter() - started, proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=40)
    ap.add_argument("--abi", type=int, default=4)
    opts = ap.parse_args()
    compile_package()
    if not pinbox.available():
        print("bench/watch.py: Debian's public-inbox is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="xenpatch-bench-watch-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        inbox, config, count = build(work, opts.series, opts.abi)
        print(f"inbox: {count} messages ({opts.series} series, {opts.abi} with ABI work) "
              f"made in {time.perf_counter() - t0:.1f} s")
        xp = [sys.executable, "-m", "xenpatch.cli", "--config", str(config)]
        start, _ = timed([*xp, "--version"])
        watch = [*xp, "watch", "--once", "--out", str(work / "out")]
        mirror = [*watch, "--source", str(inbox.inbox_dir), "--state", str(work / "m.sqlite")]
        cold, proc = timed(mirror)
        reviewed = proc.stderr.count("INFO reviewed '")
        if proc.returncode not in (0, 1) or reviewed != opts.series:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        warm, proc2 = timed(mirror)
        assert "0 reviewed" in proc2.stderr, proc2.stderr
        with inbox.serving() as url:
            http = [*watch, "--source", url, "--state", str(work / "h.sqlite")]
            timed(http)  # the HTTP state's own first pass (new.atom's window only)
            warm_http, proc3 = timed(http)
            assert "0 reviewed" in proc3.stderr, proc3.stderr
    print(f"process start (xenpatch --version): {start:.2f} s")
    print(f"cold pass over the v2 mirror: {cold:.1f} s for {reviewed} series "
          f"({cold / reviewed:.2f} s per series; {cold / start:.0f}x the process start)")
    for label, t, proc_ in (("v2 mirror", warm, proc2), ("HTTP new.atom", warm_http, proc3)):
        verdict = "met" if t < 1.0 else "NOT met"
        print(f"second pass over the {label}: {t:.2f} s for the whole process "
              f"({t / start:.1f}x the process start; target < 1 s: {verdict}); "
              f"the pass itself {pass_time(proc_.stderr):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
