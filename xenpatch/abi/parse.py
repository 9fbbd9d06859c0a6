"""Parse preprocessed header text with pycparser, keeping the GNU attributes the ABI depends on.

pycparser parses ISO C.  GNU spellings the public headers use are
rewritten first: ``__attribute__((aligned(N)))`` (Xen's
``uint64_aligned_t``, ``xen/include/public/arch-x86/xen-x86_32.h`` and
``arch-arm.h``) becomes the C23 attribute ``[[gnu::aligned(N)]]``, which
pycparser's C23 dialect keeps in the AST (an ``AttributedType``) so that
layout sees the 8-byte alignment; ``packed`` likewise; other attributes
(``unused``...) carry no layout and are dropped.  ``__extension__``,
``__inline__`` and friends become their ISO forms.
"""

from __future__ import annotations

import re

from pycparser import c_ast, c_parser

_KEEP_ATTRS = {"aligned": "aligned", "__aligned__": "aligned", "packed": "packed",
               "__packed__": "packed"}
_KEYWORDS = {
    "__extension__": "", "__inline__": "inline", "__inline": "inline",
    "__restrict__": "restrict", "__restrict": "restrict", "__const": "const",
    "__const__": "const", "__signed__": "signed", "__volatile__": "volatile",
    "__signed": "signed", "__volatile": "volatile", "__typeof__": "typeof",
    "__alignof__": "_Alignof",
}
_WORD = re.compile(r"\b(" + "|".join(re.escape(k) for k in _KEYWORDS) + r")\b")
_ATTR = re.compile(r"\b__attribute__\s*\(\(")
_ERROR = re.compile(r"^(.*?):(\d+)(?::(\d+))?: (.*)$", re.S)


class ParseFailure(Exception):
    """pycparser could not parse the text; ``file``/``line`` locate the problem."""

    def __init__(self, file: str, line: int, column: int | None, message: str) -> None:
        super().__init__(f"{file}:{line}:{column}: {message}" if column else f"{file}:{line}: {message}")
        self.file, self.line, self.column, self.message = file, line, column, message


def _attribute_end(text: str, start: int) -> int:
    """Index just past the ``))`` closing an ``__attribute__((`` opened before START."""
    depth = 2
    i = start
    while i < len(text) and depth:
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return i


def _split_top(args: str) -> list[str]:
    out, depth, cur = [], 0, []
    for c in args:
        if c == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        depth += (c == "(") - (c == ")")
        cur.append(c)
    out.append("".join(cur))
    return [a.strip() for a in out if a.strip()]


def _translate_attribute(inner: str) -> str:
    kept = []
    for attr in _split_top(inner):
        name, _, rest = attr.partition("(")
        canon = _KEEP_ATTRS.get(name.strip())
        if canon == "aligned":
            kept.append(f"gnu::aligned({rest[:-1].strip() or '16'})")
        elif canon == "packed":
            kept.append("gnu::packed")
    return f"[[{', '.join(kept)}]]" if kept else ""


def rewrite_gnu(text: str) -> str:
    """GNU C spellings to what pycparser's C23 dialect reads (see module docstring)."""
    text = _WORD.sub(lambda m: _KEYWORDS[m.group(1)], text)
    out: list[str] = []
    pos = 0
    for m in _ATTR.finditer(text):
        if m.start() < pos:
            continue
        end = _attribute_end(text, m.end())
        out.append(text[pos:m.start()])
        inner = text[m.end():end - 2]
        out.append(_translate_attribute(inner) + "\n" * inner.count("\n"))  # keep line numbers
        pos = end
    out.append(text[pos:])
    return "".join(out)


def parse(text: str, filename: str) -> c_ast.FileAST:
    """Parse preprocessed TEXT (line markers kept); errors become ParseFailure with file:line."""
    parser = c_parser.CParser(dialect="c23")
    try:
        return parser.parse(rewrite_gnu(text), filename)
    except c_parser.ParseError as e:
        msg = str(e)
        m = _ERROR.match(msg)
        if m:
            raise ParseFailure(m.group(1), int(m.group(2)),
                               int(m.group(3)) if m.group(3) else None, m.group(4)) from e
        file, _, message = msg.partition(": ")
        lexer = parser.clex
        raise ParseFailure(getattr(lexer, "_filename", file) or file,
                           getattr(lexer, "_lineno", 0), None, message or msg) from e
