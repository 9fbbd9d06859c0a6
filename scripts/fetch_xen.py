#!/usr/bin/env python3
"""Fetch real Xen from Debian for xenpatch's tests and demo (cached): a thin caller of
``xenpatch.fetchxen``, the code behind ``xenpatch fetch-xen``.

Usage: fetch_xen.py [--cache DIR] [NAME ...]   (default: xen-4.17 headers-4.17 headers-4.20)
Prints ``NAME PATH`` for each, one a line; what it fetches, how big and where
go to stderr.  Exit 0 on success, 3 when apt or the network fails, 2 on bad usage.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's xenpatch

from xenpatch import fetchxen  # noqa: E402
from xenpatch.errors import XenpatchError  # noqa: E402
from xenpatch.progress import StderrProgress, reporting  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="cache directory")
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(fetchxen.TARGETS))
    args = parser.parse_args(argv)
    bad = [n for n in args.names if n not in fetchxen.TARGETS]
    if bad:
        print(f"fetch_xen: unknown name {bad[0]!r} (known: {', '.join(fetchxen.TARGETS)})",
              file=sys.stderr)
        return 2
    try:
        with reporting(StderrProgress()):
            for name in args.names or list(fetchxen.TARGETS):
                print(name, fetchxen.fetch(name, args.cache), flush=True)
    except XenpatchError as e:
        print(f"fetch_xen: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
