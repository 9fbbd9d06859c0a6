"""Progress of long steps (fetching Xen): the reporter ``cli.py`` installs, silent otherwise.

Library code asks ``current()`` for the reporter and tells it what it does
(``note``: one line, e.g. what is fetched, how big, where to) and how far it
is (``bar``: a fraction).  It never writes to a stream itself: ``cli.py``
installs a ``StderrProgress`` around the command (none under ``-q``), which
draws the bar only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol, TextIO


class Progress(Protocol):
    def note(self, line: str) -> None: ...

    def bar(self, label: str, fraction: float) -> None: ...


class Silent:
    """Tells nobody (the default: library calls outside the command line)."""

    def note(self, line: str) -> None:
        pass

    def bar(self, label: str, fraction: float) -> None:
        pass


class StderrProgress:
    """Notes as lines on STREAM; a bar redrawn in place when STREAM is a terminal."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._open = False  # a bar is drawn on the current line
        self._last: tuple[str, int] | None = None  # what it shows (or showed last, when closed)

    def note(self, line: str) -> None:
        self._close()
        self._last = None
        self.stream.write(line + "\n")
        self.stream.flush()

    def bar(self, label: str, fraction: float) -> None:
        if not self.tty:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        shown = (label, int(fraction * 100))
        if shown == self._last:
            return  # the same picture (apt repeats its status lines); a finished bar stays
        self._last = shown
        filled = int(self.WIDTH * fraction)
        self.stream.write(f"\r  {label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                          f"{fraction * 100:3.0f}%")
        self.stream.flush()
        self._open = True
        if fraction >= 1.0:
            self._close()

    def _close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False


_current: ContextVar[Progress | None] = ContextVar("xenpatch_progress", default=None)
_SILENT = Silent()


def current() -> Progress:
    """The reporter in force (``Silent`` unless the command line installed one)."""
    return _current.get() or _SILENT


@contextlib.contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Make PROGRESS the reporter for the duration of the block."""
    token = _current.set(progress)
    try:
        yield progress
    finally:
        if isinstance(progress, StderrProgress):
            progress._close()
        _current.reset(token)
