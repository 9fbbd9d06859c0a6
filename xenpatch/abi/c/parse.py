"""Parse preprocessed header text with pycparser, keeping the GNU attributes the ABI depends on.

pycparser parses ISO C.  GNU spellings the public headers use are
rewritten first: ``__attribute__((aligned(N)))`` (Xen's
``uint64_aligned_t``, ``xen/include/public/arch-x86/xen-x86_32.h`` and
``arch-arm.h``) becomes the C23 attribute ``[[gnu::aligned(N)]]``, which
pycparser's C23 dialect keeps in the AST (an ``AttributedType``) so that
layout sees the 8-byte alignment; ``packed`` likewise; other attributes
(``unused``...) carry no layout and are dropped.  ``__extension__``,
``__inline__`` and friends become their ISO forms.

``SegmentParser`` parses a translation unit piece by piece (one external
declaration, ``chunks``) and parses each distinct piece once per typedef
context: across the arches of a run, and, with a store (``abi.segments``),
across runs; ``encode``/``decode`` turn a piece's nodes into bytes for the
store.  The pycparser internals this needs, and the generated codecs, are
in ``fast``.
"""

from __future__ import annotations

import hashlib
import marshal
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pycparser import c_ast, c_parser

from . import fast
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
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")  # as pycparser's lexer reads identifiers
_SEGMENT = re.compile(r'^# \d+ "' + re.escape(WRAPPER) + r'"', re.M)


class ParseFailure(Exception):
    """pycparser could not parse the text; ``file``/``line`` locate the problem."""

    def __init__(self, file: str, line: int, column: int | None, message: str) -> None:
        super().__init__(f"{file}:{line}:{column}: {message}" if column else f"{file}:{line}: {message}")
        self.file, self.line, self.column, self.message = file, line, column, message


def _attribute_end(text: str, start: int) -> tuple[int, bool]:
    """Index just past the ``))`` closing an ``__attribute__((`` opened before START (the
    end of TEXT when none does), and whether one does."""
    depth = 2
    i = start
    while i < len(text) and depth:
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return i, depth == 0


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
        if canon == "aligned":  # without a number: the arch's default, in declare
            number = rest[:-1].strip()
            kept.append(f"gnu::aligned({number})" if number else "gnu::aligned")
        elif canon == "packed":
            kept.append("gnu::packed")
    return f"[[{', '.join(kept)}]]" if kept else ""


def rewrite_gnu(text: str) -> str:
    """GNU C spellings to what pycparser's C23 dialect reads (see module docstring)."""
    return _rewrite(text)[0]


def _rewrite(text: str) -> tuple[str, bool]:
    """``rewrite_gnu`` of TEXT, and whether every ``__attribute__((`` in it was closed
    before its end (a part of a text rewritten alone is then rewritten as in the whole)."""
    text = _WORD.sub(lambda m: _KEYWORDS[m.group(1)], text)
    out: list[str] = []
    pos = 0
    closed = True
    for m in _ATTR.finditer(text):
        if m.start() < pos:
            continue
        end, ended = _attribute_end(text, m.end())
        closed = closed and ended
        out.append(text[pos:m.start()])
        inner = text[m.end():end - 2]
        out.append(_translate_attribute(inner) + "\n" * inner.count("\n"))  # keep line numbers
        pos = end
    out.append(text[pos:])
    return "".join(out), closed


def parse(text: str, filename: str) -> c_ast.FileAST:
    """Parse preprocessed TEXT (line markers kept); errors become ParseFailure with file:line."""
    parser = c_parser.CParser(dialect="c23")
    try:
        return parser.parse(rewrite_gnu(text), filename)
    except c_parser.ParseError as e:
        raise _failure(e, parser, filename) from e


_MARKER = re.compile(r'# (\d+) ("(?:[^"\\]|\\.)*")')
_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')


def chunks(segment: str) -> list[str]:
    """SEGMENT cut before every line that starts an external declaration after one that
    ended at nesting depth 0 with ``;`` (C11 6.9: a translation unit is a sequence of
    external declarations); every piece after the first opens with a line marker that
    puts it where it was, so that each parses alone to the same nodes and coordinates.
    A cut in the wrong place (a K&R parameter list) makes a piece fail to parse, and
    the caller then parses the whole segment."""
    lines = segment.split("\n")
    out: list[str] = []
    start, depth, ended = 0, 0, False
    file, line = None, 1  # where lines[i] is: cpp's quoted file name and line number
    for i, raw in enumerate(lines):
        if raw.startswith("# "):
            m = _MARKER.match(raw)
            if m:
                file, line = m.group(2), int(m.group(1))
                continue
        stripped = raw.strip()
        if stripped:
            if ended and depth == 0 and i > start and file is not None:
                out.append("\n".join(lines[start:i]))
                lines[i] = f"# {line} {file}\n{raw}"
                start = i
            code = _LITERAL.sub("", stripped) if ("'" in raw or '"' in raw) else stripped
            depth += (code.count("{") + code.count("(") + code.count("[")
                      - code.count("}") - code.count(")") - code.count("]"))
            ended = code.endswith(";")
        line += 1
    out.append("\n".join(lines[start:]))
    return out


# A piece's nodes, the typedef names it declared, and the line of the marker it opened
# with when its nodes were made (0: a piece that is not ``movable``).
Parsed = tuple[list[c_ast.Node], dict[str, bool], int]
_HEAD = re.compile(r'# (\d+) ("(?:[^"\\]|\\.)*"[^\n]*)\n')


def movable(text: str) -> tuple[str, int]:
    """(the key text of piece TEXT, the line it is at).  Blank lines and line markers
    after its last token change no node, and are left out of every key.  A piece that
    then opens with the only line marker it has (most do, ``chunks``) parses to the same
    nodes wherever that marker puts it, its coordinates that many lines further: its key
    text leaves the line number out.  Other pieces are at line 0: only where they were."""
    end = len(text)  # past the last line with a token
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end]
        if line.strip() and not (line.startswith("# ") and _HEAD.match(line + "\n")):
            break
        end = max(start - 1, 0)
    body = text[:end]
    m = _HEAD.match(body)
    if m is None or "\n# " in body[m.end() - 1:]:
        return body, 0
    return f"# {m.group(2)}\n{body[m.end():]}", int(m.group(1))


class SegmentStore(Protocol):
    """A persistent map from (text, typedef context) to what parsing it gave (``cache``)."""

    def get_many(self, keys: list[bytes]) -> dict[bytes, Parsed]: ...

    def put_many(self, items: dict[bytes, Parsed]) -> None: ...


class SegmentParser:
    """Parses translation units from ``preprocess.run_cpp``, reusing identical pieces.

    The text is cut at the wrapper's line markers (one segment per header the
    wrapper includes) and each segment into declarations (``chunks``); a piece
    is parsed once per typedef context (the typedef names in scope among the
    identifiers it uses), wherever it is (``movable``), so arches that
    preprocess to mostly the same text parse the common part once, and, with a
    STORE, so do later runs."""

    def __init__(self, store: SegmentStore | None = None) -> None:
        self._done: dict[bytes, Parsed] = {}
        self._store = store
        self._new: dict[bytes, Parsed] = {}
        self._cut: dict[str, _Segment] = {}
        self._rewritten: dict[str, str | None] = {}
        self.reused = 0
        self.parsed = 0

    def parse(self, text: str, filename: str) -> c_ast.FileAST:
        segments = self._segments(text)
        cut = [self._cut_up(segment) for segment in segments]
        if self._store is not None:  # the pieces of segments met before are in memory
            self._prefetch([k for c in cut if not c.results for k, _ in c.keys.values()])
        parser = fast.scoped_parser_class()(dialect="c23")
        scope: dict[str, bool] = {}
        ext: list[c_ast.Node] = []
        for segment, c in zip(segments, cut, strict=True):
            # what the segment's pieces parse to depends on nothing but their text and
            # the typedef names in scope among their identifiers (``_piece``)
            context = (filename, *map(scope.get, c.names))
            hit = c.results.get(context)
            if hit is not None:
                nodes, delta = hit
                scope.update(delta)
                ext.extend(nodes)
                self.reused += len(c.parts)
                continue
            before = dict(scope) if len(c.parts) > 1 else scope
            try:
                nodes = [n for part in c.parts
                         for n in self._piece(parser, part, filename, scope, c.keys[part])]
            except ParseFailure:
                if len(c.parts) == 1:
                    raise
                scope.clear()
                scope.update(before)
                nodes = self._piece(parser, segment, filename, scope)
            else:
                c.results[context] = (nodes, {n: scope[n] for n, was in
                                              zip(c.names, context[1:], strict=True)
                                              if scope.get(n) is not was})
                while len(c.results) > MAX_CONTEXTS:
                    del c.results[next(iter(c.results))]
            ext.extend(nodes)
        return c_ast.FileAST(ext)

    def _segments(self, text: str) -> list[str]:
        """TEXT cut at the wrapper's line markers, each part rewritten by ``rewrite_gnu``
        (kept by its text: most are met again); the whole text rewritten when a part
        leaves an ``__attribute__((`` open (a malformed header), as the parts then are
        not the whole's."""
        out = []
        for part in _cut_at_wrapper(text):
            if part not in self._rewritten:
                text_of, closed = _rewrite(part)
                self._rewritten[part] = text_of if closed else None
                while len(self._rewritten) > MAX_SEGMENTS:
                    del self._rewritten[next(iter(self._rewritten))]
            done = self._rewritten[part]
            if done is None:
                return _cut_at_wrapper(rewrite_gnu(text))
            out.append(done)
        return out

    def _cut_up(self, segment: str) -> _Segment:
        """``chunks`` of SEGMENT and the ``movable`` key of each, kept by the segment's text:
        a header's segment is the same text on the other arches of its family and in the
        next snapshot when neither it nor what it includes changed (measured: 102 distinct
        of the 296 segments of the x86 group's four tools passes of ``abi diff
        RELEASE-4.21.0 RELEASE-4.22.0``)."""
        hit = self._cut.get(segment)
        if hit is None:
            parts = chunks(segment)
            keys = {c: movable(c) for c in parts}
            names = sorted({n for key_text, _ in keys.values() for n in _IDENT.findall(key_text)})
            hit = self._cut[segment] = _Segment(parts, keys, tuple(names), {})
            while len(self._cut) > MAX_SEGMENTS:
                del self._cut[next(iter(self._cut))]
        return hit

    @property
    def unflushed(self) -> bool:
        """Whether pieces were parsed since the last flush."""
        return bool(self._new)

    @property
    def size(self) -> int:
        """How many parsed pieces are kept in memory."""
        return len(self._done)

    def flush(self) -> None:
        """Write the pieces parsed since the last flush to the store."""
        if self._store is not None and self._new:
            self._store.put_many(self._new)
        self._new = {}

    def flushed_elsewhere(self) -> None:
        """Forget the pieces parsed since the last flush without writing them: a copy of
        this parser in another process writes them (``api._write_apart``)."""
        self._new = {}

    def _prefetch(self, key_texts: list[str]) -> None:
        assert self._store is not None
        wanted = {_text_key(k) for k in key_texts} - {k[:TEXT_KEY] for k in self._done}
        for key, value in self._store.get_many(sorted(wanted)).items():
            self._done.setdefault(key, value)

    def _piece(self, parser: Any, text: str, filename: str, scope: dict[str, bool],
               moved: tuple[str, int] | None = None) -> list[c_ast.Node]:
        """Parse TEXT in SCOPE (updated with its typedef names), or reuse an earlier parse
        (of the same text elsewhere: a copy of its nodes with the coordinates moved;
        MOVED: ``movable(TEXT)``, when known)."""
        key_text, line = moved or movable(text)
        names = set(_IDENT.findall(key_text))
        context = repr(sorted((n, scope[n]) for n in names if n in scope))
        key = _text_key(key_text) + hashlib.blake2b(context.encode(), digest_size=16).digest()
        done = self._done.get(key)
        if done is None:
            try:
                nodes = parser.parse_in_scope(text, filename, scope).ext
            except c_parser.ParseError as e:
                raise _failure(e, parser, filename) from e
            except RecursionError as e:  # untrusted input nested beyond Python's stack
                lexer = parser.clex
                raise ParseFailure(getattr(lexer, "_filename", filename),
                                   getattr(lexer, "_lineno", 0), None,
                                   "nested too deeply to parse") from e
            # a name the piece declares is one of its identifiers
            declared = parser.file_scope
            delta = {n: declared[n] for n in names if n in declared and scope.get(n) != declared[n]}
            done = self._done[key] = self._new[key] = (nodes, delta, line)
            self.parsed += 1
        else:
            self.reused += 1
        nodes, delta, at = done
        scope.update(delta)
        return nodes if at == line else shifted(nodes, line - at)


def _cut_at_wrapper(text: str) -> list[str]:
    """TEXT cut before each of the wrapper's line markers (one part per header it includes)."""
    starts = [m.start() for m in _SEGMENT.finditer(text)]
    return [text[a:b] for a, b in zip([0, *starts], [*starts, len(text)], strict=True)]


TEXT_KEY = 16
MAX_SEGMENTS = 2048  # segments whose pieces a parser keeps (a snapshot has about 75 an arch)
MAX_CONTEXTS = 4  # typedef contexts whose nodes a segment keeps (``_Segment.results``)


@dataclass
class _Segment:
    """A segment cut up (``SegmentParser._cut_up``): its pieces, the ``movable`` key of
    each, the identifiers of those keys (sorted), and what the whole segment parsed to
    in each typedef context met: the values in scope of NAMES (after the file name) ->
    (its nodes, the typedef names it declared), so that a segment met again in the same
    context takes its nodes without a look at each piece (the other arch of a family,
    an unchanged header of the next snapshot, a guest view)."""

    parts: list[str]
    keys: dict[str, tuple[str, int]]
    names: tuple[str, ...]
    results: dict[tuple[object, ...], tuple[list[c_ast.Node], dict[str, bool]]]


def encode(parsed: Parsed) -> bytes:
    """PARSED as bytes for a ``SegmentStore`` (``decode`` reverses it): a node as a
    tuple (its class's index, its fields), a node seen before (``struct s {...} a,
    b;`` shares one) as (-2, its number), a coordinate as (-1, file, line, column),
    marshalled: three times faster than pickling the nodes (``fast.node_codecs``)."""
    nodes, delta, line = parsed
    return marshal.dumps((_tuples(nodes), delta, line))  # type: ignore[arg-type]


def decode(data: bytes) -> Parsed:
    """What ``encode`` encoded."""
    nodes, delta, line = marshal.loads(data)
    return _nodes(nodes, 0), delta, line


def shifted(nodes: list[c_ast.Node], lines: int) -> list[c_ast.Node]:
    """A copy of NODES with every coordinate LINES further down."""
    return _nodes(_tuples(nodes), lines)


def _tuples(nodes: list[c_ast.Node]) -> object:
    codecs = fast.node_codecs()
    index_of, encoders = codecs.index, codecs.encoders
    seen: dict[int, int] = {}

    def enc(v: object) -> object:
        t = type(v)
        if t is list:
            return [enc(x) for x in v]  # type: ignore[attr-defined]
        index = index_of.get(t)
        if index is None:
            if t is tuple:  # children are nodes, lists of nodes or None
                raise ValueError("a tuple in an AST (encode writes nodes as tuples)")
            return v
        if id(v) in seen:
            return (-2, seen[id(v)])
        seen[id(v)] = len(seen)
        return encoders[index](v, enc)

    return enc(nodes)


def _nodes(encoded: object, shift: int) -> list[c_ast.Node]:
    codecs = fast.node_codecs()
    decoders, coord = codecs.decoders, codecs.coord
    made: list[c_ast.Node] = []

    def dec(v: object) -> object:
        t = type(v)
        if t is list:
            return [dec(x) for x in v]  # type: ignore[attr-defined]
        if t is not tuple:
            return v
        index = v[0]  # type: ignore[index]
        if index >= 0:
            return decoders[index](v, dec, made, shift)
        if index == -2:
            return made[v[1]]  # type: ignore[index]
        return coord(v[1], v[2] + shift, v[3])  # type: ignore[index]

    return dec(encoded)  # type: ignore[return-value]


def identity() -> str:
    """What decides the pieces' nodes: pycparser's version, Python's, and this parser's code
    (``parse.py`` and ``fast.py``: their sizes and mtimes)."""
    import pycparser

    parts = [pycparser.__version__, str(sys.version_info[:2])]
    for path in (Path(__file__), Path(fast.__file__)):
        st = path.stat()
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return ":".join(parts)


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=TEXT_KEY).digest()


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
