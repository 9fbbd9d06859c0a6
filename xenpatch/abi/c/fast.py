"""The ABI engine's speed tricks, all here: what each buys (measured) and what it relies on.

Every trick below keeps the output byte for byte (the goldens and the
compiler-agreement test check that); each is used in one place, named in
brackets.  Figures: ``bench/fast.py`` on the Debian Xen 4.17.5 tree,
tools profile, medians of 3 on the 2-core build machine while it was
shared (load average 10-13; run it again to check them: it prints each
trick against the plain way in the same run).

* ``ScopedParser`` [``parse.SegmentParser``]: pycparser's parser started
  with a given file scope of typedef names, so that one external
  declaration can be parsed alone and its nodes reused wherever the same
  text meets the same typedef context: across the arches of one run and,
  through the segment store, across runs.  It is what makes the segment
  store possible: a patched tree (``generate``) re-parses only the pieces
  that changed; measured: x86_64 after x86_32 parses 3.7x faster (0.45 s
  against 1.68 s for the whole translation unit).  Relies on pycparser 3.x internals (the hand-written
  recursive-descent parser of 3.0): ``CParser._scope_stack``,
  ``_typedef_checked_token``, ``clex.input``, ``c_parser._TokenStream``,
  ``_parse_translation_unit_or_empty``, ``_peek``, ``_parse_error`` and
  ``_tok_coord``.  ``PYCPARSER`` is the range known to work;
  ``check_pycparser`` refuses others with one line (exit 3), and
  ``tests/test_abi_fast.py`` fails on a version outside it.
* the fast lexer [``fast_lexer_class``, ``ScopedParser.parse_in_scope``/``_peek``]:
  half of pycparser's parse time was its lexer, which tries its master regex
  and the operators of the next character for every token.  Identifiers,
  keywords, blanks and the punctuators no other token begins the same way (most
  tokens of preprocessed headers) are found by one regex, everything else by
  pycparser's own ``token`` at the same place; a piece is lexed whole before it
  is parsed, and the parser reads the buffer without a call per peek.  On an
  error the piece is parsed again the plain way, so errors are pycparser's.
  The 1035 pieces of a cold 4.21 x86_32: lexing 0.13 s -> 0.05 s, parsing
  0.21 s -> 0.135 s; a cold ``abi diff RELEASE-4.21.0 RELEASE-4.22.0`` 1.60 s
  -> 1.45 s (alternating runs, medians of 8).  Relies on ``c_lexer.Token``,
  ``_regex_master``, ``_fixed_tokens_by_first`` and the lexer's state
  (``_LEXER_STATE``); without them the plain lexer is used, and
  ``tests/test_abi_fast.py`` fails.  ``bench/fast.py`` "lexer": x86_32 of
  4.17.5 parsed from nothing, 0.22 s against 0.32 s.
* segments cut up once [``parse.SegmentParser._cut_up``]: a header's segment
  is the same text on the other arch of a family and in the next snapshot
  when neither it nor what it includes changed, so its pieces and their keys
  are kept by its text: 102 distinct of the 296 segments of the x86 group's
  four tools passes of that diff, whose ``chunks`` and ``movable`` went from
  0.044 s to 0.023 s; ``bench/fast.py`` "segments", x86_32 again with its
  pieces held: 0.019 s against 0.031 s.
* segments taken whole [``parse._Segment.results``]: what a segment's pieces
  parse to depends on their text and on which of their identifiers are
  typedef names in scope, so a segment met again with the same answers takes
  the nodes and typedef names it gave, without a key made and looked up per
  piece; each part is rewritten (``rewrite_gnu``) once, alone, when no
  ``__attribute__((`` is left open at its end.  ``bench/fast.py`` "segment
  nodes": x86_32 again, 0.0014 s against 0.0102 s; a cold ``abi diff
  RELEASE-4.21.0 RELEASE-4.22.0``: parse stage of arm64 0.012 s -> 0.003 s,
  of the 4.22.0 side's arm32 0.027 s -> 0.016 s.
* pieces that moved [``parse.movable``, ``SegmentParser._piece``]: a piece
  that opens with its only line marker is keyed without that marker's
  number (and every piece without the blank lines and markers after its last
  token), so a line added or removed above it in its header costs a copy of
  its nodes with the coordinates moved (``parse.shifted``), not a parse.  The
  4.22.0 side of ``abi diff RELEASE-4.21.0 RELEASE-4.22.0`` then parses 11 and
  7 pieces on x86_32 and x86_64 where it parsed 99 and 53; a cold ``abi
  history RELEASE-4.19.0..RELEASE-4.20.0`` took 12.1-12.5 s against
  12.9-13.8 s, with the same output; ``bench/fast.py`` "moved" (a declaration
  added near the top of domctl.h): 0.026 s against 0.032 s.
* ``node_codecs`` [``parse.encode``/``parse.decode``]: an encoder and a
  decoder per ``c_ast`` class, generated as source and ``exec``'d, that
  write a node's slots as a tuple for ``marshal``: measured 2.2x faster
  than one generic walk over each node's ``__slots__`` (0.22 s against
  0.48 s to encode and decode every piece of x86_64).  Relies on every ``c_ast.Node`` subclass listing its
  fields in ``__slots__`` and its plain values in ``attr_names`` (pycparser
  2.x and 3.x).
* ``collector_paused`` [``api.arch_models``]: the cyclic garbage collector
  off while one worker parses: it ran again and again over every AST node
  kept for reuse; measured 1.2x faster for a cold group of two arches
  (4.9 s against 5.8 s; pycparser trees have no reference cycles, so
  nothing is left behind).  After the block, ``gc.freeze()``: the pieces
  and the macro memo a process keeps for its next dumps (below) are never
  walked by a later collection, nor by the one at exit; measured on
  ``abi dump`` of a patched 4.22 tree, 0.75 s against 1.08 s for the whole
  process (the 0.3 s went to collecting at exit), and on a cold ``abi diff
  RELEASE-4.21.0 RELEASE-4.22.0``, 2.5 s against 3.6 s.
* kept workers and parser [``api._worker``, ``api._parser``]: one worker
  process per group of arches for the whole command, and one parser per
  process whose pieces stay in memory: the views and snapshots an ``abi
  diff``, ``abi history`` or ``review`` dumps one after another re-parse
  and re-read nothing the same process has seen, and no dump starts a
  process.  With the interface rules' partial guest views (``api.dump``'s
  ROOTS, ``interfaces.Side.view``) and the macro memo (``macros.Memo``: an
  expansion or a value reused when every definition it looked up and every
  question it asked the types gets the same answer), a cold ``abi diff
  RELEASE-4.21.0 RELEASE-4.22.0`` went from 8.1 s to 3.6 s (2.3 s with the
  freeze above) and a cold ``abi history`` of that cycle from 39-43 s to
  12-16 s, with the same output (``bench/abi_diff.py``,
  ``bench/abi_history.py``).  The memo alone: the macros of the second arch
  of a group in 0.024 s against 0.051 s, and of a patched tree after its base
  in 0.008 s (``tests/test_abi_partial.py`` checks both give what a fresh
  evaluation gives).
* started dumps and files between processes [``api.start``, ``api._sent``,
  ``api._remote``, ``interfaces.views``]: ``abi diff`` (and ``review``'s
  rating) starts both sides' tools views, then each pair of guest views,
  before it waits for either: a worker goes from one side's arches to the
  other's while this process does its own, and neither waits for the other
  in between.  What a worker gets and gives back goes through files in this
  process's transfer directory (``/dev/shm``), the pipes carry their names:
  through the pipes, a worker's 2.6 MB of results waited for this process's
  result thread to win the GIL from a busy main thread for every 64 kB,
  0.15 s between a worker's two started tasks; and a snapshot's files are
  written once for all its dumps, not sent again with each guest view.
* caches written while a process waits [``api.write_passes_soon``,
  ``api.write_texts_later``, ``api._write_apart``, ``reuse.PassStore.take``/
  ``write``]: a worker writes its passes right after its arches of the new
  side (it would wait for this process to finish its own); this process's
  passes, the JSON of the models it made (20 ms a model) and the pieces it
  parsed are written by a child forked for it once the tools views are done,
  while this process goes on with the guest views.  ``finish`` at the end of
  ``abi diff`` went from 0.1 s to 0.01 s.  A thread did it first: the
  pickling and JSON hold the GIL, and the diff before the views went from
  0.05 s to 0.26 s; the forked writer has its own core.  Alternating cold
  ``abi diff`` of the release pair (medians of 10): the thread with the
  passes 2.16 s against 2.36 s (a slow hour), the JSON added 1.66 s against
  1.73 s, the fork 1.66 s against 1.81 s, the pieces added 1.56 s against
  1.61 s.
* pieces stored once [``segments.SegmentCache.put_many``]: the two processes
  of a dump parse the pieces their arches have in common each (about 700 of
  a cold 4.21 tree); the one that stores second encodes only the pieces the
  store does not have: the x86 group's store step 0.10 s -> 0.045 s.  With
  the model cache pruned once per dump rather than once per arch
  (``modelcache.store_texts``), the tools-only probes answered by the tools
  pass (below) and the three items above, a cold ``abi diff RELEASE-4.21.0
  RELEASE-4.22.0`` went from 2.0-2.4 s to 1.7-2.2 s (alternating runs,
  medians of 8-10, the machine's speed varying by 1.5x over the hour).
* cpp ahead [``pipeline.cpp_ahead``, ``preprocess.run_cpp``'s SLOT]: a
  group's next arches are preprocessed in threads while this process works on
  the arch before (cpp is a process; a run is 10-40 ms), each in a slot of the
  staged copy (a directory whose ``public`` links to it: the same output text,
  and its own wrapper); the pass takes the run begun with its arguments, and runs
  cpp itself when they turned out otherwise.  Not before the first pass of a
  profile, which learns what cpp rejects.  Most of it is in the guest views'
  chain, where each process waited on one cpp run after the other: a cold ``abi
  diff RELEASE-4.21.0 RELEASE-4.22.0``, with the release tag's tree no longer
  read twice (``rating.rate``), 1.575 s -> 1.467 s (alternating runs, medians of
  10), the same JSON; with dom0_ops.h guessed (below), so that the first tools
  pass runs ahead too, 1.879 s -> 1.744 s (12 runs, a slow hour).  Tried and
  left: the runs of this process's own group begun at ``api.start`` (the
  arguments worked out twice ate the gain: 1.634 s against 1.636 s).
* guessed rejections [``pipeline.c_pass``, ``preprocess.run_cpp``'s TAIL]: the
  headers cpp rejected in a process's last pass of a profile (kept in the
  cache, ``cpp-rejects.json``, for the next process), and in a guest view
  the headers that refuse it with ``#if !defined(__XEN__) &&
  !defined(__XEN_TOOLS__)`` / ``#error`` (domctl.h, sysctl.h), and where the
  interface version is the latest (tools, guest-latest) those that refuse it
  with ``#if __XEN_INTERFACE_VERSION__ >= ...`` / ``#error`` (dom0_ops.h: a
  process's first tools pass ran cpp twice without it), go after the
  others, the included ones first so that each meets its own ``#error``.
  When cpp rejects exactly those and nothing else, the output before them
  is what a run without them gives (cpp reads the wrapper top to bottom;
  ``tests/test_abi_cpp_tail.py`` compares the text and the models), so the
  pass needs one cpp run where it needed one and another per rejection;
  any other outcome runs again the plain way.  With the tools-only probe
  answered once per staged snapshot for both guest views and the staged copy
  itself kept per content (``api._staged``): a cold ``abi diff
  RELEASE-4.21.0 RELEASE-4.22.0`` made 48 cpp runs in one worker, now 22;
  its four guest views took 0.72 s, now 0.45 s.  Since then the probe is not
  run at all after a tools pass of the same staged files in the process (a
  diff's guest views follow its tools views): what that pass's cpp took and
  refused answers it (``Staged.tools_cpp``), 16 cpp runs fewer in that diff,
  and 13 runs per process in all.
* passes reused [``reuse.PassStore``, ``pipeline.c_pass``/``run``]: a tree
  that differs from one dumped before by ``#define`` lines (``generate``'s
  patched tree, a series under review, most commits of a history) has C text
  of the same shape (``preprocess.Split.shape``: the same lines from the
  same files, wherever they are), so its declarations are the earlier
  pass's with each type's line moved, and each macro's value is the one an
  earlier process found when every definition and every answer about the
  types it depended on is the same (``macros.Shortcut``).  Kept in memory,
  and, for the first and the last whole tree of each arch and profile (the
  base a later process patches, the newest commit), in files written as the
  process ends.  ``abi dump`` of a
  4.22 tree with one define added to xen.h after the tree itself: the x86
  group's pass 0.40 s -> 0.16 s (parse and declare 0.16 s -> 0.02 s, macros
  0.07 s -> 0.01 s), the command 0.51 s -> 0.31 s; a cold ``abi history
  RELEASE-4.21.0..RELEASE-4.22.0``, whose commits mostly add defines, 8.8 s
  -> 7.7 s with the same output (alternating runs; ``bench/abi_history.py``);
  ``bench/fast.py`` "reuse", the x86 group of a patched 4.17.5 tree in a new
  process: 0.17-0.21 s against 0.38-0.40 s.
* constants by target [``declare._LITERALS``]: the value of a constant
  expression without names (an array size, an enumerator of
  cpufeatureset.h: ``5*32+3``) depends only on the target's types, so a
  process keeps it for every later pass, not only for the rest of one
  translation unit: ``declare`` of the x86 group of a cold ``abi diff
  RELEASE-4.21.0 RELEASE-4.22.0`` went from 0.128 s and 0.125 s (old side,
  new side) to 0.099 s and 0.082 s.
* equal records skipped [``diff._diff_types``]: a record whose fields are
  equal on both sides has no field change, so ``_diff_fields`` is not
  called: the tools diff of that release pair, on the command's one-core
  path between the dumps, went from 0.076 s to 0.032 s.
* ``compact_json`` and ``splice_arches`` [``modelcache``, ``api.dump_json``]:
  an arch model is cached as compact JSON with sorted keys (json's C
  encoder; the indented form only the pure-Python encoder writes: 1.9x
  slower), and a warm ``abi dump`` pastes the cached texts into the
  document without building the model: 0.018 s against 2.06 s for
  ``json.loads`` + ``ArchModel.from_json`` + ``to_json`` + ``json.dumps``
  of the same four models (116x).  This is why ``api`` has ``dump_json`` beside
  ``dump``: the same document, without the model in between.
* ``scratch_dir`` [``api.arch_models``]: the headers are staged for cpp in
  ``/dev/shm`` when ``$TMPDIR`` is not set: 17 ms against 88 ms on this
  machine's ext4 ``/tmp`` mounted with ``discard`` (5x).

pycparser is imported only when a parser or the codecs are first wanted:
the warm path (``splice_arches``) does not pay the ~35 ms of its import.
"""

from __future__ import annotations

import gc
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from ...errors import EnvironmentFailure

if TYPE_CHECKING:
    from pycparser import c_ast, c_parser

# The pycparser versions whose internals ``ScopedParser`` uses: 3.0 <= v < 4.
PYCPARSER = ((3, 0), (4, 0))
_INTERNALS = ("_parse_translation_unit_or_empty", "_peek", "_parse_error", "_tok_coord")


def version_tuple(version: str) -> tuple[int, ...]:
    """"3.12" -> (3, 12); the leading digits of each part, up to the first part without
    any ("3.0rc1" -> (3, 0))."""
    out: list[int] = []
    for part in version.split("."):
        m = re.match(r"\d+", part)
        if m is None:
            break
        out.append(int(m.group()))
        if m.end() != len(part):
            break
    return tuple(out)


def supported(version: str) -> bool:
    """Whether pycparser VERSION is in ``PYCPARSER``."""
    low, high = PYCPARSER
    return low <= version_tuple(version) < high


def check_pycparser() -> None:
    """EnvironmentFailure (one line) unless the installed pycparser is one ``ScopedParser``
    works with: its version in ``PYCPARSER`` and the internals it uses present."""
    import pycparser
    from pycparser import c_parser

    missing = [n for n in _INTERNALS if not hasattr(c_parser.CParser, n)]
    stream = getattr(c_parser, "_TokenStream", None)
    if stream is None:
        missing.append("_TokenStream")
    else:  # ScopedParser fills its buffer and reads it (``_peek``)
        missing += [n for n in ("_buffer", "_index") if not hasattr(stream(_end_of_input), n)]
    if not supported(pycparser.__version__) or missing:
        low, high = (".".join(map(str, v)) for v in PYCPARSER)
        raise EnvironmentFailure(f"pycparser {pycparser.__version__} is not supported "
                                 f"(xenpatch needs >= {low}, < {high})")


@cache
def scoped_parser_class() -> type[c_parser.CParser]:
    """``ScopedParser``: pycparser's parser, started with a given set of typedef names, and
    fed the tokens of the whole text at once by ``fast_lexer_class``'s lexer."""
    check_pycparser()
    from pycparser import c_parser

    lexer = fast_lexer_class()

    class ScopedParser(c_parser.CParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._fast = None if lexer is None else lexer(_refuse, dialect=self._dialect)

        def parse_in_scope(self, text: str, filename: str,
                           scope: dict[str, bool]) -> c_ast.FileAST:
            # CParser.parse() with a seeded file scope (pycparser 3.x internals).
            tokens = None if self._fast is None else self._fast.tokens(text, filename)
            if tokens is not None:
                stream = c_parser._TokenStream(_end_of_input)
                stream._buffer = tokens
                try:
                    return self._parse_stream(scope, stream)
                except (c_parser.ParseError, RecursionError):
                    pass  # again token by token: the error, and the lexer, as pycparser has them
            self.clex.input(text, filename)
            return self._parse_stream(scope, c_parser._TokenStream(self.clex.token))

        def _parse_stream(self, scope: dict[str, bool], stream: Any) -> c_ast.FileAST:
            self._scope_stack = [dict(scope)]
            self._typedef_checked_token = None
            self._tokens = stream
            ast = self._parse_translation_unit_or_empty()
            tok = self._peek()
            if tok is not None:
                self._parse_error(f"before: {tok.value}", self._tok_coord(tok))
            return ast

        def _peek(self, k: int = 1) -> Any:
            # CParser._peek without the call of _TokenStream.peek when the token is buffered
            stream = self._tokens
            buffer = stream._buffer
            i = stream._index + k - 1
            tok = buffer[i] if k > 0 and i < len(buffer) else stream.peek(k)
            if tok is not self._typedef_checked_token:
                self._classify_identifier(tok)
            return tok

        @property
        def file_scope(self) -> dict[str, bool]:
            return self._scope_stack[0]

    return ScopedParser


def _end_of_input() -> None:
    return None


class _Unlexed(Exception):
    """A text the fast lexer leaves to pycparser's (it reported an error)."""


def _refuse(msg: str, line: int, column: int) -> None:
    raise _Unlexed(msg)


@cache
def fast_lexer_class() -> Any:
    """``FastLexer``, or None when pycparser's lexer lacks what it relies on.

    pycparser's ``CLexer.token`` finds each token by matching its master regex and the
    operators that start with the next character, then keeping the longer.  Most tokens of
    preprocessed Xen headers are identifiers, keywords, blanks and punctuators no other
    token starts the same way; one regex finds those (and nothing it is not sure of), and
    everything else (numbers, literals, line markers, attributes, pragmas, errors) goes to
    pycparser's own ``token``, at the same place in the same state: the same tokens with
    the same coordinates (``tests/test_abi_fast.py`` compares the two on every piece of a
    real tree).  ``tokens`` lexes a whole text; on an error it gives None, and the text is
    lexed the plain way, token by token as the parser asks.
    """
    from pycparser import c_lexer

    buckets: Any = getattr(c_lexer, "_fixed_tokens_by_first", None)
    master: Any = getattr(c_lexer, "_regex_master", None)
    Token: Any = getattr(c_lexer, "Token", None)
    probe = c_lexer.CLexer(_refuse)
    if not (isinstance(buckets, dict) and hasattr(master, "match") and Token is not None
            and all(hasattr(probe, n) for n in _LEXER_STATE)):
        return None
    # A punctuator is found here when no master-regex token starts with it and no longer
    # operator of its bucket is there: '(' always, '*' when no '=' follows, '[' when it
    # does not begin an attribute ('.', '/' and quotes begin numbers, comments, literals;
    # '#' a line marker or pragma).
    punct: dict[str, str] = {}
    alternatives = []
    for first, bucket in sorted(buckets.items()):
        single = [e.tok_type for e in bucket if e.literal == first]
        if not single or first in "./'\"#\\" or first.isalnum() or first in "_$" \
                or master.match(first):
            continue
        longer = [re.escape(e.literal[1:]) for e in bucket if len(e.literal) > 1]
        if first == "[":  # pycparser's _attribute_begin: \[\s*\[
            longer.append(r"\s*\[")
        punct[first] = single[0]
        alternatives.append(re.escape(first) + (f"(?!{'|'.join(longer)})" if longer else ""))
    # an identifier or keyword not followed by a quote (L"..", u8'.': one literal token)
    fast = re.compile(r"([ \t\f\v]+)|(\n)|([A-Za-z_$][0-9A-Za-z_$]*+)(?![\'\"])|("
                      + "|".join(alternatives) + ")").match

    class FastLexer(c_lexer.CLexer):
        _pos: int  # CLexer's, set by _init_state

        def token(self) -> Any:
            if self._pending_tok is None and not self._in_attribute:
                text = self._lexdata
                while (m := fast(text, self._pos)) is not None:
                    kind: Any = m.lastindex
                    if kind == 1:
                        self._pos = m.end()
                        continue
                    if kind == 2:
                        self._lineno += 1
                        self._pos = self._line_start = m.end()
                        continue
                    value = m.group(kind)
                    pos = self._pos
                    self._pos = m.end()
                    return Token(self._keyword_map.get(value, "ID") if kind == 3
                                 else punct[value], value, self._lineno,
                                 pos - self._line_start + 1, self._filename)
            return super().token()

        def tokens(self, text: str, filename: str) -> list[Any] | None:
            """Every token of TEXT, then None; or None if lexing TEXT reports an error."""
            self.input(text, filename)
            try:
                out = list(iter(self.token, None))
            except _Unlexed:
                return None
            out.append(None)
            return out

    return FastLexer


# What FastLexer.token reads and moves of CLexer's state (pycparser 3.x).
_LEXER_STATE = ("_lexdata", "_filename", "_pos", "_line_start", "_lineno", "_pending_tok",
                "_in_attribute", "_keyword_map")


class NodeCodecs:
    """Per-class encoders and decoders of ``c_ast`` nodes (``parse.encode``'s format)."""

    def __init__(self, index: Mapping[type, int], encoders: list[Callable[..., Any]],
                 decoders: list[Callable[..., Any]], coord: type) -> None:
        self.index, self.encoders, self.decoders, self.coord = index, encoders, decoders, coord


@cache
def node_codecs() -> NodeCodecs:
    """The codecs, generated once: for each node class, a function writing its slots as
    ``(index, field, ...)`` and one reading them back (children through the callbacks),
    its coordinate SHIFT lines further down."""
    from pycparser import c_ast
    from pycparser.c_parser import Coord

    classes = sorted((c for c in vars(c_ast).values()
                      if isinstance(c, type) and issubclass(c, c_ast.Node) and c is not c_ast.Node),
                     key=lambda c: c.__name__)
    namespace: dict[str, object] = {"new": object.__new__, "classes": classes, "Coord": Coord}
    exec("\n".join(_codec_source(i, c) for i, c in enumerate(classes)), namespace)  # noqa: S102
    return NodeCodecs({c: i for i, c in enumerate(classes)},
                      [namespace[f"encode_{i}"] for i in range(len(classes))],  # type: ignore[misc]
                      [namespace[f"decode_{i}"] for i in range(len(classes))],  # type: ignore[misc]
                      Coord)


_COORD_OUT = "None if v.{0} is None else (-1, v.{0}.file, v.{0}.line, v.{0}.column)"


def _codec_source(index: int, cls: type) -> str:
    """An encoder and a decoder for CLS's fields, written out (``attr_names`` are plain
    values, the rest children)."""
    fields = [f for f in cls.__slots__ if f != "__weakref__"]  # type: ignore[attr-defined]
    plain = set(cls.attr_names)  # type: ignore[attr-defined]
    enc = [f"v.{f}" if f in plain else _COORD_OUT.format(f) if f == "coord" else f"enc(v.{f})"
           for f in fields]
    dec = [f"    n.{f} = v[{i}]" if f in plain else
           f"    c = v[{i}]\n    n.coord = None if c is None else Coord(c[1], c[2] + shift, c[3])"
           if f == "coord" else f"    n.{f} = dec(v[{i}])" for i, f in enumerate(fields, 1)]
    return (f"def encode_{index}(v, enc):\n    return ({index}, {', '.join(enc)})\n\n"
            f"def decode_{index}(v, dec, made, shift):\n    n = new(classes[{index}])\n"
            f"    made.append(n)\n" + "\n".join(dec) + "\n    return n\n")


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (on again after, if it was), and what
    the block left alive frozen (``gc.freeze``): the parser's pieces and the macro memo
    stay for the process's next dumps, and no later collection, nor the one at exit,
    walks them again."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def compact_json(doc: Any) -> str:
    """DOC as compact JSON with sorted keys (json's C encoder)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def splice_arches(doc: dict[str, Any], arch_texts: Mapping[str, str]) -> str:
    """``compact_json`` of DOC with ``doc["arches"]`` made of ARCH_TEXTS, each pasted in as
    it is (itself ``compact_json`` of an arch model): the text ``compact_json`` would
    write for the parsed models, without parsing them."""
    marks = {arch: f"\0xenpatch-arch-{arch}" for arch in arch_texts}
    text = compact_json(dict(doc, arches=marks))
    for arch, mark in marks.items():
        text = text.replace(json.dumps(mark), arch_texts[arch], 1)
    return text


def scratch_dir() -> str | None:
    """Where the headers are staged for cpp: $TMPDIR when set, else /dev/shm when it is a
    writable directory, else the system's default (None)."""
    if os.environ.get("TMPDIR"):
        return None
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None
