"""A patch's unified diff as files, hunks and numbered lines (pure; git's diff format).

Every rule that looks at what a patch adds reads it from here, and the
reply quotes hunks from here, so that "line N" means the same thing
everywhere: the line's number in the file as the patch leaves it (the
``+c`` side of ``@@ -a,b +c,d @@``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_DIFF_GIT = re.compile(r"^diff --git (\S+) (\S+)$")


@dataclass(frozen=True)
class Line:
    kind: str  # " " context, "+" added, "-" removed
    text: str
    old: int | None  # line number before the patch (None for added lines)
    new: int | None  # line number after the patch (None for removed lines)


@dataclass(frozen=True)
class Hunk:
    old_start: int
    new_start: int
    heading: str  # the function/context git prints after @@ ... @@
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class FileDiff:
    path: str  # the path after the patch (before it, for a deletion)
    old_path: str | None  # None for a new file
    new_file: bool
    deleted: bool
    binary: bool
    hunks: tuple[Hunk, ...]

    def added(self) -> tuple[Line, ...]:
        return tuple(ln for h in self.hunks for ln in h.lines if ln.kind == "+")


def _strip(path: str) -> str | None:
    path = path.strip().strip('"')
    if path == "/dev/null":
        return None
    return path[2:] if path[:2] in ("a/", "b/") else path


class _OpenHunk:
    """A hunk being read: its lines so far and how many old/new lines it still counts."""

    def __init__(self, m: re.Match[str]) -> None:
        self.old, self.new = int(m.group(1)), int(m.group(3))
        self.heading = m.group(5).strip()
        self.o, self.n = self.old, self.new
        self.left_old = int(m.group(2)) if m.group(2) is not None else 1
        self.left_new = int(m.group(4)) if m.group(4) is not None else 1
        self.lines: list[Line] = []

    def take(self, raw: str) -> bool:
        """Add RAW if it is one of this hunk's lines (the counts say whether one is due)."""
        kind, body = raw[:1] or " ", raw[1:]
        if kind == " " and self.left_old > 0 and self.left_new > 0:
            self.lines.append(Line(" ", body, self.o, self.n))
            self.o, self.n, self.left_old, self.left_new = (self.o + 1, self.n + 1,
                                                            self.left_old - 1, self.left_new - 1)
        elif kind == "+" and self.left_new > 0:
            self.lines.append(Line("+", body, None, self.n))
            self.n, self.left_new = self.n + 1, self.left_new - 1
        elif kind == "-" and self.left_old > 0:
            self.lines.append(Line("-", body, self.o, None))
            self.o, self.left_old = self.o + 1, self.left_old - 1
        else:
            return False
        return True

    def done(self) -> Hunk:
        return Hunk(self.old, self.new, self.heading, tuple(self.lines))


def _file_header(cur: dict, raw: str) -> None:
    """A line of a file's header in a git diff (git's diff.c)."""
    if raw.startswith("new file mode"):
        cur["new_file"], cur["old_path"] = True, None
    elif raw.startswith("deleted file mode"):
        cur["deleted"] = True
    elif raw.startswith(("Binary files", "GIT binary patch")):
        cur["binary"] = True
    elif raw.startswith("--- ") and _strip(raw[4:].split("\t")[0]) is None:
        cur["new_file"], cur["old_path"] = True, None
    elif raw.startswith("+++ "):
        new_path = _strip(raw[4:].split("\t")[0])
        if new_path is None:
            cur["deleted"] = True
            cur["path"] = cur["old_path"] or cur["path"]
        else:
            cur["path"] = new_path


def parse_diff(text: str) -> tuple[FileDiff, ...]:
    """The files of the unified diff TEXT (``git format-patch`` output after ``---``)."""
    files: list[FileDiff] = []
    cur: dict | None = None
    hunk: _OpenHunk | None = None

    def close_file() -> None:
        if cur is not None and cur["path"]:
            files.append(FileDiff(cur["path"], cur["old_path"], cur["new_file"], cur["deleted"],
                                  cur["binary"], tuple(cur["hunks"])))

    for raw in text.split("\n"):
        if hunk is not None and cur is not None:
            if hunk.take(raw):
                continue
            if raw.startswith("\\"):
                continue  # "\ No newline at end of file"
            cur["hunks"].append(hunk.done())
            hunk = None
        if (m := _DIFF_GIT.match(raw)) is not None:
            close_file()
            cur = {"path": _strip(m.group(2)), "old_path": _strip(m.group(1)), "new_file": False,
                   "deleted": False, "binary": False, "hunks": []}
        elif cur is None:
            continue
        elif (h := _HUNK.match(raw)) is not None:
            hunk = _OpenHunk(h)
        elif raw.startswith("-- ") and raw.strip() == "--":
            close_file()  # the signature separator of format-patch
            cur = None
        else:
            _file_header(cur, raw)
    if hunk is not None and cur is not None:
        cur["hunks"].append(hunk.done())
    close_file()
    return tuple(files)


def files_touched(diffs: tuple[FileDiff, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for d in diffs:
        for p in (d.old_path, d.path):
            if p and p not in out:
                out.append(p)
    return tuple(out)
