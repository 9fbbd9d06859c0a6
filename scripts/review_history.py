"""Review each commit touching xen/include/public in a xen.git range against its parent (issue 7, item 3).

    .venv/bin/python scripts/review_history.py [--git DIR] [--range RELEASE-4.21.0..RELEASE-4.22.0]

Prints one block per commit: its subject and its error and warning
findings.  The repository is only read (the review works in scratch
clones); the ABI cache is $XENPATCH_ABI_CACHE or the default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from xenpatch.review import engine, sources
from xenpatch.review.series import assemble

DEFAULT_GIT = "/work/.mirror/xen-project+xen/repo"


def commits(git_dir: str, rev_range: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", git_dir, "rev-list", "--reverse", "--no-merges",
                          rev_range, "--", "xen/include/public"], capture_output=True, text=True,
                         check=True).stdout
    return out.split()


def review_commit(git_dir: str, sha: str, tmp: Path, settings: engine.Settings) -> engine.Review:
    mbox = tmp / f"{sha}.mbox"
    mbox.write_bytes(subprocess.run(["git", "--git-dir", git_dir, "format-patch", "-1", "--stdout",
                                     "--no-signature", sha], capture_output=True, check=True).stdout)
    mails = sources.load(str(mbox), archive=None, message_id=None, limits=sources.Limits())
    return engine.review(assemble(mails), Path(git_dir), f"{sha}^", settings)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--git", default=DEFAULT_GIT)
    ap.add_argument("--range", default="RELEASE-4.21.0..RELEASE-4.22.0")
    args = ap.parse_args()
    cache = os.environ.get("XENPATCH_ABI_CACHE")
    settings = engine.Settings(cache_dir=Path(cache) if cache else None)
    with tempfile.TemporaryDirectory() as tmp:
        for sha in commits(args.git, args.range):
            r = review_commit(args.git, sha, Path(tmp), settings)
            print(f"{sha[:12]} {r.series.subject}")
            shown = [f for f in r.findings if f.severity in ("error", "warning")]
            for f in shown:
                where = f"{f.file}:{f.line}" if f.file else "-"
                print(f"    {f.severity}: {f.rule}: {where}: {f.message}")
            if not shown:
                print("    (no error or warning)")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
