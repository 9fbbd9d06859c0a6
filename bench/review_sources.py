"""Benchmark: reading one thread out of a public-inbox v2 epoch (review/mirror.py),
against ``git cat-file --batch`` of every message blob of the same epoch in the same run.

    python bench/review_sources.py [--messages N] [--runs N]

The epoch is made with ``git fast-import`` in a temporary directory: N messages,
one commit each with the message in blob ``m`` (public-inbox-v2-format(5)), in
threads of ten, each mail about 2 kB.  The mirror reader has to look at every
message's header to find the thread, so the baseline is git reading every blob
once (the least any reader of the epoch can do) plus ``git log --raw`` listing
them.  Printed: the medians of --runs runs and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xenpatch.review.mirror import load_thread  # noqa: E402
from xenpatch.review.sources import Limits  # noqa: E402

ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin"}


def make_epoch(dest: Path, count: int) -> None:
    subprocess.run(["git", "init", "-q", "--bare", str(dest)], check=True, env=ENV)
    chunks: list[bytes] = []
    for i in range(count):
        thread = f"In-Reply-To: <m{i - 1}@x>\nReferences: <m{i // 10 * 10}@x> <m{i - 1}@x>\n" \
            if i % 10 else ""
        msg = (f"From: A <a@example.org>\nSubject: [PATCH {i % 10}/9] s{i // 10}\n"
               f"Message-ID: <m{i}@x>\n{thread}\n" + "body line\n" * 200).encode()
        chunks.append(b"blob\nmark :%d\ndata %d\n%s\n" % (2 * i + 1, len(msg), msg))
        commit = b"commit refs/heads/master\nmark :%d\ncommitter A <a@x> %d +0000\ndata 1\nx\n" % (
            2 * i + 2, 1700000000 + i)
        if i:
            commit += b"from :%d\n" % (2 * i)
        chunks.append(commit + b"M 100644 :%d m\n\n" % (2 * i + 1))
    subprocess.run(["git", "--git-dir", str(dest), "fast-import", "--quiet"], input=b"".join(chunks),
                   check=True, env=ENV)
    subprocess.run(["git", "--git-dir", str(dest), "repack", "-adq"], check=True, env=ENV)


def baseline(epoch: Path) -> float:
    start = time.perf_counter()
    listing = subprocess.run(["git", "--git-dir", str(epoch), "log", "--format=", "--raw",
                              "--no-abbrev", "--", "m"], check=True, env=ENV, capture_output=True,
                             text=True).stdout
    shas = "".join(line.split()[3] + "\n" for line in listing.splitlines() if line.startswith(":"))
    subprocess.run(["git", "--git-dir", str(epoch), "cat-file", "--batch"], input=shas.encode(),
                   check=True, env=ENV, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def reader(epoch: Path, message_id: str) -> float:
    start = time.perf_counter()
    mails = load_thread(epoch, message_id, Limits())
    elapsed = time.perf_counter() - start
    assert len(mails) == 10, len(mails)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="xenpatch-bench-") as tmp:
        epoch = Path(tmp) / "0.git"
        make_epoch(epoch, args.messages)
        mid = f"m{args.messages // 2 + 5}@x"
        base = statistics.median(baseline(epoch) for _ in range(args.runs))
        ours = statistics.median(reader(epoch, mid) for _ in range(args.runs))
    print(f"epoch of {args.messages} messages, one thread of 10 read (median of {args.runs})")
    print(f"  git log --raw + cat-file --batch of every blob: {base:.2f} s")
    print(f"  review.mirror.load_thread:                       {ours:.2f} s "
          f"({ours / base:.1f}x the baseline, {ours / args.messages * 1e6:.0f} us per message)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
