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


def parse_diff(text: str) -> tuple[FileDiff, ...]:
    """The files of the unified diff TEXT (``git format-patch`` output after ``---``)."""
    files: list[FileDiff] = []
    cur: dict | None = None
    hunk: dict | None = None

    def close_hunk() -> None:
        nonlocal hunk
        if cur is not None and hunk is not None:
            cur["hunks"].append(Hunk(hunk["old"], hunk["new"], hunk["heading"],
                                     tuple(hunk["lines"])))
        hunk = None

    def close_file() -> None:
        nonlocal cur
        close_hunk()
        if cur is not None and cur["path"]:
            files.append(FileDiff(cur["path"], cur["old_path"], cur["new_file"], cur["deleted"],
                                  cur["binary"], tuple(cur["hunks"])))
        cur = None

    lines = text.split("\n")
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        m = _DIFF_GIT.match(raw)
        if m:
            close_file()
            cur = {"path": _strip(m.group(2)), "old_path": _strip(m.group(1)), "new_file": False,
                   "deleted": False, "binary": False, "hunks": []}
            continue
        if cur is None:
            continue
        if hunk is not None and hunk["left_old"] + hunk["left_new"] > 0 and raw[:1] in (" ", "+",
                                                                                      "-", ""):
            kind = raw[:1] or " "
            body = raw[1:]
            if kind == " ":
                hunk["lines"].append(Line(" ", body, hunk["o"], hunk["n"]))
                hunk["o"] += 1
                hunk["n"] += 1
                hunk["left_old"] -= 1
                hunk["left_new"] -= 1
            elif kind == "+":
                hunk["lines"].append(Line("+", body, None, hunk["n"]))
                hunk["n"] += 1
                hunk["left_new"] -= 1
            else:
                hunk["lines"].append(Line("-", body, hunk["o"], None))
                hunk["o"] += 1
                hunk["left_old"] -= 1
            continue
        if raw.startswith("\\"):
            continue  # "\ No newline at end of file"
        h = _HUNK.match(raw)
        if h:
            close_hunk()
            old, new = int(h.group(1)), int(h.group(3))
            hunk = {"old": old, "new": new, "heading": h.group(5).strip(), "lines": [],
                    "o": old, "n": new,
                    "left_old": int(h.group(2)) if h.group(2) is not None else 1,
                    "left_new": int(h.group(4)) if h.group(4) is not None else 1}
            continue
        close_hunk()
        if raw.startswith("new file mode"):
            cur["new_file"] = True
            cur["old_path"] = None
        elif raw.startswith("deleted file mode"):
            cur["deleted"] = True
        elif raw.startswith(("Binary files", "GIT binary patch")):
            cur["binary"] = True
        elif raw.startswith("--- "):
            old_path = _strip(raw[4:].split("\t")[0])
            if old_path is None:
                cur["new_file"], cur["old_path"] = True, None
        elif raw.startswith("+++ "):
            new_path = _strip(raw[4:].split("\t")[0])
            if new_path is None:
                cur["deleted"] = True
                cur["path"] = cur["old_path"] or cur["path"]
            else:
                cur["path"] = new_path
        elif raw.startswith("-- ") and raw.strip() == "--":
            close_file()  # the signature separator of format-patch
    close_file()
    return tuple(files)


def files_touched(diffs: tuple[FileDiff, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for d in diffs:
        for p in (d.old_path, d.path):
            if p and p not in out:
                out.append(p)
    return tuple(out)
