"""One arch's pass over the headers: preprocess, parse, lay out, evaluate macros, group families.

Imports pycparser (through ``parse``/``declare``); only ``api`` imports
this module, and only when the cache has no answer.  It imports nothing of
``api`` (the arch rule of a header's path is ``arch.applies_to``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import atomic
from ...errors import InputError
from ..arch import applies_to
from ..families import group_families
from ..model import ArchModel, Family, HeaderFailure, Macro, TypeInfo
from ..sources import digest
from . import preprocess as pp
from .declare import Declarations, DeclareError
from .layout import TARGETS
from .macros import Shortcut, evaluate_macros, find_redefinitions
from .parse import ParseFailure, SegmentParser
from .reuse import PassStore


@dataclass(frozen=True)
class Pass:
    """The result of the C side of one arch: what the macro side needs too."""

    split: pp.Split
    decls: Declarations
    headers: tuple[str, ...]
    failed: tuple[HeaderFailure, ...]
    not_applicable: tuple[str, ...]
    worked_out: bool = True  # parsed and laid out here, not taken from an earlier pass


class Clock:
    """Seconds spent per stage (``bench/abi_dump.py`` prints them)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class Staged:
    """FILES written out once for every arch of a worker, without the unsafe ones."""

    public: Path
    unsafe: Mapping[str, str]  # header -> reason (preprocess.unsafe_includes)
    # (cpp, arch) -> {header: whether cpp took it}, from this process's tools passes of
    # these files: ``_tools_only`` asks it before it runs cpp again
    tools_cpp: dict[tuple[str, str], dict[str, bool]] = field(default_factory=dict,
                                                              compare=False)




def stage(files: Mapping[str, bytes], tmp: Path) -> Staged:
    unsafe = pp.unsafe_includes(files)
    return Staged(pp.stage({h: d for h, d in files.items() if h not in unsafe}, tmp / "staged"),
                  unsafe)


def run(files: Mapping[str, bytes], arch: str, profile: str, cpp: str, tmp: Path,
        parser: SegmentParser | None = None, clock: Clock | None = None,
        staged: Staged | None = None, roots: Sequence[str] | None = None,
        store: PassStore | None = None) -> ArchModel:
    """The ArchModel of FILES on ARCH (TMP: a private scratch directory; PARSER: shared by
    the arches one worker does, to reuse the segments they have in common; STAGED: FILES
    already staged by ``stage``; ROOTS: only these headers and what they need, ``api.dump``;
    STORE: the passes done before, ``reuse``)."""
    clock = clock or Clock()
    result = c_pass(files, arch, profile, cpp, tmp, parser or SegmentParser(), clock, staged,
                    roots, store)
    types = tuple(sorted(result.decls.types.values(), key=lambda t: t.name))
    with clock.stage("macros"):
        known = None if store is None else store.known(arch, profile)
        learned: dict[str, Shortcut] | None = \
            {} if store is not None and result.worked_out else None
        macros, redefined = _macros(result, known, learned)
        if store is not None and learned is not None:
            store.keep(arch, profile, result.split, result.decls, learned, whole=roots is None)
    with clock.stage("families"):
        # a partial model is the interface rules' (``api.dump``'s ROOTS), which read no
        # families: grouping them was 7% of a cold release pair's diff
        families = _families(macros, types) if roots is None else ()
    return ArchModel(arch=arch, headers=result.headers, failed=result.failed,
                     not_applicable=result.not_applicable, macros=macros,
                     families=families, types=types, redefined=redefined)


def c_pass(files: Mapping[str, bytes], arch: str, profile: str, cpp: str, tmp: Path,
           parser: SegmentParser, clock: Clock | None = None,
           staged: Staged | None = None, roots: Sequence[str] | None = None,
           store: PassStore | None = None) -> Pass:
    """Preprocess and parse every applicable header (of ROOTS and what they need, when
    given), dropping the ones that fail; the declarations of a text STORE has seen the
    shape of are taken from there instead (``reuse``)."""
    clock = clock or Clock()
    with clock.stage("stage"):
        staged = staged or stage(files, tmp / arch)
        wanted = None if roots is None else pp.with_includers(files, roots)
        public, todo, failed, not_applicable = _applicable(files, arch, staged, wanted)
    header_of = lambda f: pp.relative_header(f, public)  # noqa: E731
    guess = _likely_rejected(files, profile, todo)
    rejected: set[str] = set()
    while True:  # every round that does not return drops a header from TODO
        todo, tail = _round(files, todo, guess)
        with clock.stage("cpp"):
            ahead = _AHEAD.pop((cpp, arch, profile, public, tuple(todo), tuple(tail)), None)
            run = ahead.result() if ahead is not None else \
                pp.run_cpp(cpp, arch, profile, public, todo, tail)
        if tail and (not run.reached_tail or set(run.errors) != set(tail)):
            todo, guess = todo + tail, set()  # a wrong guess: this round again without it
            continue
        if run.errors:
            staged_files = {h: d for h, d in files.items() if h not in staged.unsafe}
            for header, error in run.errors.items():
                if header not in todo and header not in tail:
                    raise InputError(f"{pp.WRAPPER}: cpp failed: {error}")
                if header in todo:
                    todo.remove(header)
                rejected.add(header)
                if profile != "tools" and _tools_only(cpp, arch, public, header, staged_files,
                                                      staged):
                    not_applicable.append(header)
                else:
                    failed[header] = error
            if not tail:
                continue
        guess = set()
        _REJECTED[profile] = frozenset(rejected)
        if profile == "tools":
            took = staged.tools_cpp.setdefault((cpp, arch), {})
            took.update(dict.fromkeys(rejected, False))
            took.update(dict.fromkeys(todo, True))
        with clock.stage("split"):
            split = pp.split_output(run.text, public, todo)
        if store is not None:
            with clock.stage("reuse"):
                kept = store.declarations(arch, split, header_of)
            if kept is not None:
                return Pass(split, kept, tuple(sorted(todo)),
                            tuple(_failure(h, e) for h, e in sorted(failed.items())),
                            tuple(sorted(not_applicable)), worked_out=False)
        try:
            decls = Declarations(TARGETS[arch], header_of)
            with clock.stage("parse"):
                ast = parser.parse(split.text, pp.WRAPPER)
            with clock.stage("declare"):
                decls.visit(ast)
        except (ParseFailure, DeclareError) as e:
            header = header_of(e.file)
            root = split.roots.get((header, e.line)) or _nearest_root(split, header, e.line)
            if root is None or root not in todo:
                raise InputError(f"{header or e.file}:{e.line}: {e.message}") from e
            todo.remove(root)
            column = getattr(e, "column", None)
            failed[root] = f"{header}:{e.line}" + (f":{column}" if column else "") + \
                f": {e.message}"
            continue
        return Pass(split, decls, tuple(sorted(todo)),
                    tuple(_failure(h, e) for h, e in sorted(failed.items())),
                    tuple(sorted(not_applicable)))


def _round(files: Mapping[str, bytes], todo: Sequence[str],
           guess: Collection[str]) -> tuple[list[str], list[str]]:
    """The headers of a round of ``c_pass``'s cpp: TODO but GUESS, ordered again (a header
    only a dropped one included is now a root), and the tail: the headers cpp is likely
    to reject, last, the included ones first (each then meets its own #error).  When cpp
    rejects every one of them and nothing else, the output before them is the next
    round's, which this round then is."""
    return (pp.order_headers(files, [h for h in todo if h not in guess]),
            pp.order_headers(files, sorted(guess))[::-1])


def cpp_ahead(files: Mapping[str, bytes], arches: Sequence[str], profile: str, cpp: str,
              staged: Staged, roots: Sequence[str] | None = None) -> None:
    """Begin, in threads, the first cpp run ``c_pass`` will make for each of ARCHES (each
    in its own slot of the staged copy, ``preprocess.run_cpp``): a group's next arch is
    then preprocessed while this process works on the one before (cpp is a process of
    its own; measured: 20-30 ms a run).  A run ``c_pass`` then asks for with the same
    arguments takes its result; a guess that turns out otherwise (the arch before
    rejected another header) is dropped, and ``c_pass`` runs cpp itself."""
    from concurrent.futures import ThreadPoolExecutor

    global _CPP_THREADS
    wanted = None if roots is None else pp.with_includers(files, roots)
    for arch in arches:
        public, todo, _, _ = _applicable(files, arch, staged, wanted)
        todo, tail = _round(files, todo, _likely_rejected(files, profile, todo))
        key = (cpp, arch, profile, public, tuple(todo), tuple(tail))
        if key in _AHEAD:
            continue
        if _CPP_THREADS is None:
            _CPP_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cpp")
        _AHEAD[key] = _CPP_THREADS.submit(pp.run_cpp, cpp, arch, profile, public, todo, tail,
                                          f".cpp-{os.getpid()}-{next(_SLOTS)}")
        while len(_AHEAD) > MAX_AHEAD:  # never asked for: a guess that was wrong
            _AHEAD.pop(next(iter(_AHEAD)))


# The cpp runs ``cpp_ahead`` began, by c_pass's arguments; the threads that run them.
_AHEAD: dict[tuple[str, str, str, Path, tuple[str, ...], tuple[str, ...]], Any] = {}
MAX_AHEAD = 16
_CPP_THREADS: Any = None
_SLOTS = itertools.count()  # a slot per run: no two runs share a wrapper


def _forget_ahead() -> None:
    global _CPP_THREADS
    _AHEAD.clear()
    _CPP_THREADS = None  # a forked child has none of the parent's threads


def stop_cpp_threads() -> None:
    """Wait for the cpp runs ``cpp_ahead`` began and stop its threads (the end of a
    command: ``api.finish``); a later ``cpp_ahead`` starts them again."""
    global _CPP_THREADS
    threads, _CPP_THREADS = _CPP_THREADS, None
    _AHEAD.clear()
    if threads is not None:
        threads.shutdown(wait=True)


os.register_at_fork(after_in_child=_forget_ahead)


def _applicable(files: Mapping[str, bytes], arch: str, staged: Staged,
                wanted: Collection[str] | None = None
                ) -> tuple[Path, list[str], dict[str, str], list[str]]:
    """(public dir, headers to do, failed, not applicable) of FILES (of WANTED) on ARCH."""
    headers = sorted(h for h in files if h.endswith(".h") and (wanted is None or h in wanted))
    not_applicable = [h for h in headers if not applies_to(h, arch)]
    failed = {h: e for h, e in staged.unsafe.items() if h not in not_applicable}
    public = staged.public
    todo = pp.order_headers(files, [h for h in headers
                                    if h not in failed and h not in not_applicable])
    return public, todo, failed, not_applicable


# The headers cpp rejected in this process's last pass of each profile: the next pass (the
# next arch, the other side of a diff, the next commit of a history) puts them last
# (``c_pass``), and so needs one cpp run instead of one and another per rejection.
_REJECTED: dict[str, frozenset[str]] = {}
# ``#error`` unless __XEN__ or __XEN_TOOLS__: domctl.h, sysctl.h (a guest profile's guess)
_TOOLS_GUARD = re.compile(
    rb"^#if !defined\(__XEN__\) && !defined\(__XEN_TOOLS__\)\s*\n#error ", re.M)


def remember_rejected(path: Path) -> Callable[[], None]:
    """Start from the guesses kept in PATH (a new process: a patched tree's dump, a worker)
    and return what writes them back when they changed; a file that cannot be read or
    written is no guess."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if not _REJECTED else {}
        for profile, headers in kept.items():
            _REJECTED.setdefault(str(profile), frozenset(str(h) for h in headers))
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    before = dict(_REJECTED)

    def save() -> None:
        if _REJECTED == before:
            return
        atomic.write_cache(path, json.dumps({p: sorted(h) for p, h in _REJECTED.items()}))
    return save


def _likely_rejected(files: Mapping[str, bytes], profile: str, todo: Sequence[str]) -> set[str]:
    """The headers of TODO cpp is likely to reject in PROFILE: a guess, checked by the run.
    What the last pass of PROFILE rejected; in a guest view, the headers whose text
    refuses guests (``_TOOLS_GUARD``); where the interface version is the latest (tools,
    guest-latest), the headers whose text refuses it (``_LATEST_GUARD``)."""
    guess = set(_REJECTED.get(profile, ()))
    for h in todo:
        guest, latest = _refuses(files[h])
        if (guest and profile != "tools") or (latest and profile in ("tools", "guest-latest")):
            guess.add(h)
    return guess & set(todo)


_REFUSES: dict[bytes, tuple[bool, bool]] = {}
# ``#error`` from an interface version on: dom0_ops.h ("a compatibility interface only",
# >= 0x00030204), which the latest version always is
_LATEST_GUARD = re.compile(
    rb"^#if __XEN_INTERFACE_VERSION__ >= 0x[0-9a-fA-F]+\s*\n#error ", re.M)


def _refuses(data: bytes) -> tuple[bool, bool]:
    """Whether a header's text opens the ``#error`` block of ``_TOOLS_GUARD`` (guests),
    and of ``_LATEST_GUARD`` (memoised by content: every pass asks for every header, 5 ms
    a pass unmemoised)."""
    found = _REFUSES.get(data)
    if found is None:
        if len(_REFUSES) > 4096:
            _REFUSES.clear()
        found = _REFUSES[data] = (_TOOLS_GUARD.search(data) is not None,
                                  _LATEST_GUARD.search(data) is not None)
    return found


# ``_tools_only``'s answers, by what cpp reads for them (``_closure``): the other guest
# view of the snapshot asks again, and so does the next commit of a history that left
# domctl.h and what it includes alone.
_TOOLS_ONLY: dict[tuple[str, str, str, str], bool] = {}


def _tools_only(cpp: str, arch: str, public: Path, header: str,
                files: Mapping[str, bytes], staged: Staged | None = None) -> bool:
    """Whether HEADER, which stopped cpp in a guest profile, preprocesses for the tools: a
    tools-only header (domctl.h, sysctl.h).  What a tools pass of the same STAGED files
    found (every header after those it needs, as the tools view reads it) answers;
    without one, cpp is run on xen.h, as every header expects, and HEADER.  FILES: what
    is staged in PUBLIC; that answer is kept for the same headers."""
    took = None if staged is None else staged.tools_cpp.get((cpp, arch), {}).get(header)
    if took is not None:
        return took
    first = ["xen.h"] if (public / "xen.h").is_file() and header != "xen.h" else []
    key = (_closure(files, [*first, header]), cpp, arch, header)
    if key not in _TOOLS_ONLY:
        if len(_TOOLS_ONLY) > 4096:  # a watch bot's process lives long
            _TOOLS_ONLY.clear()
        _TOOLS_ONLY[key] = not pp.run_cpp(cpp, arch, "tools", public, [*first, header]).errors
    return _TOOLS_ONLY[key]


def _closure(files: Mapping[str, bytes], headers: Sequence[str]) -> str:
    """A digest of HEADERS and every header they may include, directly or not, with their
    paths: all cpp can read for them from the staged FILES."""
    seen: set[str] = set()
    todo = [h for h in headers if h in files]
    while todo:
        rel = todo.pop()
        if rel not in seen:
            seen.add(rel)
            todo += pp.include_candidates(files, rel)
    return digest({rel: files[rel] for rel in seen})


def _nearest_root(split: pp.Split, header: str, line: int) -> str | None:
    """The wrapper header that brought in the closest earlier line of HEADER."""
    best = None
    for (h, ln), root in split.roots.items():
        if h == header and ln <= line and (best is None or ln > best[0]):
            best = (ln, root)
    return best[1] if best else None


def _macros(result: Pass, known: Mapping[str, Shortcut] | None,
            learned: dict[str, Shortcut] | None) -> tuple[tuple[Macro, ...], tuple[Macro, ...]]:
    defines = result.split.defines
    return (evaluate_macros(defines, result.decls, known=known, learned=learned),
            tuple(find_redefinitions(defines, result.decls)))


def _families(found: tuple[Macro, ...], types: tuple[TypeInfo, ...]) -> tuple[Family, ...]:
    return tuple(sorted(group_families(found, types), key=lambda f: f.prefix))


def _failure(header: str, error: str) -> HeaderFailure:
    """HEADER's failure with ERROR on one line (cpp and pycparser messages may span several)."""
    return HeaderFailure(header, " ".join(error.split()))
