"""Anchored editing of text files: find a place by a chain of patterns, insert text there.

An anchor that is not found is an ``AnchorError`` naming the file and the
anchor (exit 2): a tree whose layout differs gets a clear error, never a
silently wrong patch.  Pure: text in, text out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError


class AnchorError(InputError):
    """An anchor was not found in a file of the tree."""


@dataclass(frozen=True)
class Anchor:
    """Where to insert: after (or before) the line matched by the last of STEPS.

    Each step is a regular expression searched line by line from the line
    after the previous step's match.  Once the first step matched, the
    later ones must match before a line matching STOP (e.g. the end of the
    function).  With LAST, the final step takes its last match in range
    instead of the first.
    """

    what: str  # the anchor in words, for errors: "the end of struct xc_dom_image"
    steps: tuple[str, ...]
    where: str = "after"  # "after" | "before"
    stop: str | None = None
    last: bool = False


@dataclass(frozen=True)
class Located:
    index: int  # 0-based line index at which new text is inserted
    match: re.Match[str]  # the last step's match (named groups give context)
    first: re.Match[str]  # the first step's match


def split_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def locate(text: str, anchor: Anchor, path: str) -> Located:
    """The insertion point ANCHOR names in TEXT (the file at PATH), or AnchorError."""
    lines = split_lines(text)
    pos = 0
    first: re.Match[str] | None = None
    match: re.Match[str] | None = None
    end = len(lines)
    for n, step in enumerate(anchor.steps):
        rx = re.compile(step)
        final = n == len(anchor.steps) - 1
        found = None
        for i in range(pos, end):
            m = rx.search(lines[i].rstrip("\n"))
            if m:
                found = (i, m)
                if not (final and anchor.last):
                    break
            if n > 0 and anchor.stop and re.search(anchor.stop, lines[i]):
                break
        if found is None:
            raise AnchorError(f"{path}: anchor not found: {anchor.what} (no line matching "
                              f"{step!r}{' after the previous anchor line' if n else ''})")
        i, match = found
        if n == 0:
            first = match
        pos = i + 1
    assert first is not None and match is not None
    index = pos if anchor.where == "after" else pos - 1
    return Located(index, match, first)


def insert_at(text: str, index: int, new: str) -> str:
    """TEXT with NEW (whole lines) inserted before line INDEX (0-based)."""
    if new and not new.endswith("\n"):
        new += "\n"
    lines = split_lines(text)
    return "".join(lines[:index]) + new + "".join(lines[index:])


def replace_line(text: str, index: int, new_line: str) -> str:
    """TEXT with line INDEX (0-based) replaced by NEW_LINE."""
    lines = split_lines(text)
    lines[index] = new_line if new_line.endswith("\n") else new_line + "\n"
    return "".join(lines)
