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

from .preprocess import WRAPPER

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
_IDENT = re.compile(r"[A-Za-z_]\w*")
_SEGMENT = re.compile(r'^# \d+ "' + re.escape(WRAPPER) + r'"', re.M)


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
    out: list[str] = []
    cur: list[str] = []
    depth = 0
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
        raise _failure(e, parser, filename) from e


class _ScopedParser(c_parser.CParser):
    """pycparser's parser, started with a given set of typedef names in scope."""

    def parse_in_scope(self, text: str, filename: str, scope: dict[str, bool]) -> c_ast.FileAST:
        # CParser.parse() with a seeded file scope (pycparser 3.x internals).
        self._scope_stack = [dict(scope)]
        self._typedef_checked_token = None
        self.clex.input(text, filename)
        self._tokens = c_parser._TokenStream(self.clex.token)
        ast = self._parse_translation_unit_or_empty()
        tok = self._peek()
        if tok is not None:
            self._parse_error(f"before: {tok.value}", self._tok_coord(tok))
        return ast

    @property
    def file_scope(self) -> dict[str, bool]:
        return self._scope_stack[0]


class SegmentParser:
    """Parses translation units from ``preprocess.run_cpp``, reusing identical segments."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, tuple[tuple[str, bool], ...]],
                         tuple[list[c_ast.Node], dict[str, bool]]] = {}
        self.reused = 0

    def parse(self, text: str, filename: str) -> c_ast.FileAST:
        text = rewrite_gnu(text)
        starts = [m.start() for m in _SEGMENT.finditer(text)]
        bounds = zip([0, *starts], [*starts, len(text)], strict=True)
        parser = _ScopedParser(dialect="c23")
        scope: dict[str, bool] = {}
        ext: list[c_ast.Node] = []
        for start, end in bounds:
            segment = text[start:end]
            names = set(_IDENT.findall(segment))
            key = (segment, tuple(sorted((n, scope[n]) for n in names if n in scope)))
            done = self._done.get(key)
            if done is None:
                try:
                    nodes = parser.parse_in_scope(segment, filename, scope).ext
                except c_parser.ParseError as e:
                    raise _failure(e, parser, filename) from e
                except RecursionError as e:  # untrusted input nested beyond Python's stack
                    lexer = parser.clex
                    raise ParseFailure(getattr(lexer, "_filename", filename),
                                       getattr(lexer, "_lineno", 0), None,
                                       "nested too deeply to parse") from e
                delta = {n: v for n, v in parser.file_scope.items() if scope.get(n) != v}
                done = self._done[key] = (nodes, delta)
            else:
                self.reused += 1
            ext.extend(done[0])
            scope.update(done[1])
        return c_ast.FileAST(ext)


def _failure(e: c_parser.ParseError, parser: c_parser.CParser, filename: str) -> ParseFailure:
    """pycparser's message as file:line:col; some errors name only the file, then the
    lexer's position says where."""
    msg = str(e)
    m = _ERROR.match(msg)
    if m:
        return ParseFailure(m.group(1), int(m.group(2)),
                            int(m.group(3)) if m.group(3) else None, m.group(4))
    file, _, message = msg.partition(": ")
    lexer = parser.clex
    return ParseFailure(getattr(lexer, "_filename", file) or file or filename,
                        getattr(lexer, "_lineno", 0), None, message or msg)
