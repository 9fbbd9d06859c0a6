"""From a line of the series' result back to the patch that added it (pure data, built by apply.py).

The ABI model names ``header:line`` in the tree after the whole series; a
finding is reported against the patch that added that line, at the line's
number in the file as *that* patch leaves it (what its hunk shows), found
with ``git blame`` of the result (one blame per touched file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

PUBLIC = "xen/include/public/"


@dataclass(frozen=True)
class Locator:
    """``added[path][result_line] = (patch, line in that patch's result)`` for every line the
    series added; ``first_patch[path]``: the first patch touching PATH; ``lines[path]``: the
    result text of each touched file (to find a name below a type's first line)."""

    added: Mapping[str, Mapping[int, tuple[int, int]]] = field(default_factory=dict)
    first_patch: Mapping[str, int] = field(default_factory=dict)
    lines: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # removed[path]: (patch, line of the patch's result where the line was, its old text)
    removed: Mapping[str, tuple[tuple[int, int, str], ...]] = field(default_factory=dict)

    def removal(self, header: str, line: int, name: str) -> tuple[int | None, str, int | None]:
        """Where a patch removed NAME from HEADER (relative to public/): the first removed
        line naming it; else ``header()``."""
        path = PUBLIC + header
        word = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])")
        for patch, at, text in self.removed.get(path, ()):
            if word.search(text):
                return patch, path, at
        return self.header(header, line, name)

    def locate(self, path: str, line: int, name: str | None = None,
               extent: int = 400) -> tuple[int | None, str, int | None]:
        """(patch, path, line) of what the model reports at PATH:LINE (repository path).

        The line itself when the series added it; else, below LINE (a type's
        first line: the change is inside its body), the first added line that
        names NAME, or else the first added line within EXTENT lines; else the
        first patch that touched the file, at LINE; else no patch at all."""
        added = self.added.get(path, {})
        if line in added:
            patch, at = added[line]
            return patch, path, at
        below = sorted(n for n in added if line <= n <= line + extent)
        if name:
            word = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])")
            text = self.lines.get(path, ())
            for n in below:
                if n - 1 < len(text) and word.search(text[n - 1]):
                    patch, at = added[n]
                    return patch, path, at
        if below:
            patch, at = added[below[0]]
            return patch, path, at
        if path in self.first_patch:
            return self.first_patch[path], path, line
        return None, path, line or None

    def header(self, header: str, line: int, name: str | None = None) -> tuple[int | None, str, int | None]:
        """``locate`` for a header path relative to xen/include/public/ (the model's)."""
        return self.locate(PUBLIC + header, line, name)
