"""Rule ``style``: Xen's CODING_STYLE on the C lines a patch adds under xen/ and tools/.

Which rules a file is judged by (decided from the file as it was before the
patch, or from the added text for a new file):

* ``linux`` -- a file that follows the Linux style it was taken from
  (CODING_STYLE: "Some of the code in the hypervisor ... is derived from
  other sources ... the prevailing coding style of the upstream source is
  generally used (commonly the Linux coding style)"): its Emacs block says
  ``c-file-style: "linux"``, or more of its indented lines start with a tab
  than with spaces.  Only trailing white space is judged.
* ``hypervisor`` -- any other file under xen/: everything below.
* ``tools`` -- any other file under tools/ (libxl has its own
  tools/libs/light/CODING_STYLE, ``if (cond)`` and braces on the
  statement's line; other tools vary): spaces not tabs, 4-space indent
  levels, line length, trailing white space -- not the hypervisor's
  ``if ( cond )`` spacing or brace placement.

Rules (CODING_STYLE): "Indenting uses spaces, not tabs"; "An indent level
consists of four spaces"; "Spaces are placed between the keyword and the
brackets surrounding the condition, between the brackets and the
condition itself"; "There should be no trailing white space"; "Lines
should be less than 80 characters" (judged as more than 80 columns, the
issue's bound); "Braces ... are usually placed on a line of their own,
except for the do/while loop".  All warnings; only added lines.
"""

from __future__ import annotations

import re

from ..finding import Finding
from ..hunks import FileDiff

MAX_COLUMNS = 80
C_SUFFIXES = (".c", ".h")
_EMACS_LINUX = re.compile(r'c-file-style:\s*"(linux|k&r)"', re.IGNORECASE)
_KEYWORD_PAREN = re.compile(r"\b(if|while|for|switch)\s*\(")
_KEYWORD_NO_SPACE = re.compile(r"\b(if|while|for|switch)(\(|\s*\((?! |\n|$))")
_BRACE_SAME_LINE = re.compile(r"^\s*(?:\}\s*)?(?:if|else|for|while|switch)\b.*\)?\s*\{\s*$")
_CLOSE_ELSE = re.compile(r"^\s*\}\s*else\b")
_STATEMENT_END = (";", "{", "}", ":", "*/")
_LABEL = re.compile(r"^\s*[A-Za-z_]\w*:\s*$")  # " out:" (Xen indents labels by one space)
# A file whose own lines pass 80 columns this often tolerates long lines (tables such
# as arch-x86/cpufeatureset.h, the x86 emulator): its prevailing style wins.
LONG_LINES_TOLERATED = 0.02


def file_style(path: str, before: str | None, added: list[str]) -> str | None:
    """``hypervisor``, ``tools``, ``linux`` or None (not a C file under xen/ or tools/)."""
    if not path.endswith(C_SUFFIXES) or not path.startswith(("xen/", "tools/")):
        return None
    text = before if before is not None else "\n".join(added)
    if _EMACS_LINUX.search(text):
        return "linux"
    tabs = spaces = 0
    for line in text.splitlines():
        if line.startswith("\t"):
            tabs += 1
        elif line.startswith("    "):
            spaces += 1
    if tabs > spaces:
        return "linux"
    return "hypervisor" if path.startswith("xen/") else "tools"


def check_style(number: int, diff: FileDiff, before: str | None) -> list[Finding]:
    """The style warnings of the lines patch NUMBER adds to one file (BEFORE: its old text)."""
    if diff.binary:
        return []
    added = diff.added()
    style = file_style(diff.path, before, [ln.text for ln in added])
    if style is None:
        return []
    long_ok = before is not None and _long_share(before) > LONG_LINES_TOLERATED
    out: list[Finding] = []
    for hunk in diff.hunks:
        prev = ""
        in_comment = False
        for ln in hunk.lines:
            if ln.kind == "-":
                continue
            if ln.kind == "+":
                for problem in _problems(ln.text, prev, style, in_comment, long_ok):
                    out.append(Finding("style", "warning", number, diff.path, ln.new, problem))
            stripped = ln.text.strip()
            if "/*" in stripped and "*/" not in stripped[stripped.index("/*"):]:
                in_comment = True
            elif "*/" in stripped:
                in_comment = False
            if stripped:
                prev = ln.text
    return out


def _long_share(text: str) -> float:
    lines = text.splitlines()
    return sum(len(ln.expandtabs(8)) > MAX_COLUMNS for ln in lines) / max(len(lines), 1)


def _problems(text: str, prev: str, style: str, in_comment: bool, long_ok: bool) -> list[str]:
    out: list[str] = []
    if text != text.rstrip():
        out.append("trailing white space")
    if style == "linux":
        return out
    indent = text[:len(text) - len(text.lstrip())]
    if "\t" in indent:
        out.append("indented with a tab; Xen indents with spaces (4 per level)")
    columns = len(text.expandtabs(8))
    # "User visible strings (e.g., printk() messages) should not be split so they can
    # searched for more easily" (CODING_STYLE, Line Length): a line long only because
    # of a string literal is fine.
    quoted = len(_no_strings(text).expandtabs(8)) < columns - 2
    if columns > MAX_COLUMNS and not long_ok and not quoted:
        out.append(f"line is {columns} columns (more than {MAX_COLUMNS})")
    code = text.strip()
    if not code or in_comment or code.startswith(("*", "/*", "#", "//")) or _LABEL.match(text):
        return out
    starts_statement = prev.rstrip().endswith(_STATEMENT_END) or not prev.strip()
    if "\t" not in indent and starts_statement and len(indent) % 4:
        out.append(f"indented by {len(indent)} spaces; an indent level is four spaces")
    if style != "hypervisor":
        return out
    if _KEYWORD_PAREN.search(_no_strings(code)) and _KEYWORD_NO_SPACE.search(_no_strings(code)):
        word = _KEYWORD_NO_SPACE.search(_no_strings(code)).group(1)  # type: ignore[union-attr]
        out.append(f"no space inside the brackets of '{word}'; Xen writes '{word} ( x )'")
    if (_BRACE_SAME_LINE.match(code) and not code.startswith("do")) or _CLOSE_ELSE.match(code):
        out.append("brace on the statement's line; Xen puts braces on a line of their own "
                   "(except do/while)")
    return out


def _no_strings(code: str) -> str:
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', code)
