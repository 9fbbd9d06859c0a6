"""A progress bar on stderr for long commands, drawn only when stderr is a terminal (cli passes it in)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class StderrBar:
    """``update(done, total, label)`` redraws one line; nothing at all when piped or quiet."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.live = not quiet and self.stream.isatty()
        self.start = time.monotonic()

    def update(self, done: int, total: int, label: str) -> None:
        if not self.live or not total:
            return
        width = 30
        fill = width * done // total
        secs = time.monotonic() - self.start
        line = f"[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {secs:5.1f}s {label}"
        self.stream.write("\r\x1b[K" + line[:110])
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def stderr_bar(quiet: bool = False) -> StderrBar:
    return StderrBar(quiet=quiet)
