"""What a pass worked out, kept for the next pass that reads the same declarations.

Most trees the engine dumps differ from one it dumped before by a few
``#define`` lines: ``generate``'s patched tree, a series under review, the
next commit of a history.  Their translation units then hold the same C
declarations, only some of them on other lines.  Two things of a pass are
kept for them, in memory for the rest of the process and in files beside
the model cache for the next process:

* **The declarations** (``declare.Declarations``: typedefs, tags,
  enumerators and the laid-out types), keyed by the arch and the *shape* of
  the C text: cpp's output without its define lines (``preprocess.Split``),
  without blank lines and without the line numbers of its line markers.
  Two texts of one shape are the same tokens from the same files in the same
  order, so parsing and laying them out gives the same declarations except
  for where each one is: each type's line is moved to the line its first
  token now has (the k-th line of C text of one is the k-th of the other).
  A type named after its line (an anonymous enum, ``enum memory.h:409``)
  that moved, or a line the two texts cannot pair without ambiguity, makes
  the pass parse again.
* **What each macro's value depended on** (``macros.Shortcut``), per arch:
  the definitions its expansion looked up, the questions its evaluation
  asked the types and their answers.  A new process takes a value from
  there only when every one of them gets the same answer, so a stale entry
  costs a lookup, never a wrong value.

A pass is kept when it had to be worked out (parsed and laid out) from the
whole tree (not a partial guest view): in memory at once, and on disk when
the process ends, the first and the last such pass of each arch and profile:
the trees a later process patches (``generate``'s and ``review``'s base, the
old side of ``abi diff``, the newest commit of ``abi history``; a patched
tree of the same shape takes them as well).  Files are read with an
unpickler that builds only the engine's own value classes, and a file that
cannot be read is a miss.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import pickle
import re
import shutil
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from ... import atomic
from ..model import TypeInfo
from ..modelcache import code_identity, keep_newest
from . import preprocess as pp
from .declare import Declarations
from .layout import TARGETS
from .macros import Shortcut

_ANONYMOUS_ENUM = re.compile(r"^enum (.+):(\d+)$")  # ``declare._enum_spelling``
MAX_FILES = 24  # declaration files (about 0.8 MB each): 2 trees in 3 profiles on 4 arches


def relocate(types: dict[str, TypeInfo], headers: Sequence[str], old: array,
             new: array) -> dict[str, TypeInfo] | None:
    """TYPES (laid out from a text whose C lines were at OLD) with each type's line where
    that line now is (NEW; HEADERS: both texts' headers, the same by their shape); None
    when a line cannot be paired or an anonymous enum, named after its line, moved."""
    if old == new:
        return types
    moved: dict[tuple[str, int], int] = {}
    for header, a, b in zip(headers, old, new, strict=True):
        if moved.setdefault((header, a), b) != b:
            return None  # one header:line in two places that moved apart
    out: dict[str, TypeInfo] = {}
    for name, t in types.items():
        line = moved.get((t.header, t.line))
        if line is None:
            return None
        m = _ANONYMOUS_ENUM.match(name)
        if m and line != t.line:
            return None
        out[name] = t if line == t.line else replace(t, line=line)
    return out


@dataclass
class _Kept:
    """One pass's declarations, with where its lines of C text were (``Split``)."""

    decls: Declarations
    headers: tuple[str, ...]
    lines: array
    learned: dict[str, Shortcut]  # what its macros' values depended on (read: none)


class PassStore:
    """The declarations and macro shortcuts of the passes this process did, and the files
    of earlier processes under DIRECTORY (None: memory only)."""

    MEMORY = 12  # passes kept in memory: a snapshot's views on 4 arches

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[tuple[str, str], _Kept] = {}  # (arch, shape)
        # (arch, profile) -> the keys of its first and last whole pass worked out here
        self._ends: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._known: dict[tuple[str, str], dict[str, Shortcut] | None] = {}
        self.replayed = 0

    # -- declarations ---------------------------------------------------------------
    def declarations(self, arch: str, split: pp.Split,
                     header_of: Callable[[str], str]) -> Declarations | None:
        """The declarations of SPLIT's text on ARCH, from a pass whose text had the same
        shape (lines moved to SPLIT's), or None."""
        kept = self._memory.get((arch, split.shape)) or self._read(arch, split.shape)
        if kept is None or kept.headers != split.headers:
            return None
        types = relocate(kept.decls.types, split.headers, kept.lines, split.lines)
        if types is None:
            return None
        self.replayed += 1
        d = kept.decls
        return Declarations.walked(d.target, header_of, d.typedefs, d.tags, d.enumerators, types)

    def keep(self, arch: str, profile: str, split: pp.Split, decls: Declarations,
             learned: dict[str, Shortcut], whole: bool) -> None:
        """A pass worked out here (WHOLE: of the whole tree; LEARNED: its macros'
        shortcuts): kept in memory, and, when it is the first or the last whole one of
        ARCH and PROFILE, written at exit."""
        key = (arch, split.shape)
        self._remember(key, _Kept(decls, split.headers, split.lines, learned))
        if whole:  # [first, last]; the first may have gone from memory (``_remember``)
            ends = self._ends.setdefault((arch, profile), [])
            ends[1:] = [key] if ends and key != ends[0] else []
            if not ends:
                ends.append(key)

    def _remember(self, key: tuple[str, str], kept: _Kept) -> None:
        """KEPT in memory, the newest last; past MEMORY the oldest goes but KEY, one to be
        written at exit only when nothing else can (more whole passes than MEMORY: every
        arch in every profile, a long-lived process)."""
        self._memory.pop(key, None)
        self._memory[key] = kept
        while len(self._memory) > self.MEMORY:
            ends = {k for keys in self._ends.values() for k in keys}
            older = [k for k in self._memory if k != key]
            oldest = next((k for k in older if k not in ends), older[0])
            self._memory.pop(oldest)
            for keys in self._ends.values():
                if oldest in keys:
                    keys.remove(oldest)

    # -- the macros -----------------------------------------------------------------
    def known(self, arch: str, profile: str) -> dict[str, Shortcut] | None:
        """The shortcuts of the macros of ARCH in PROFILE an earlier process wrote (read
        once)."""
        key = (arch, profile)
        if key not in self._known:
            self._known[key] = None
            if self.directory is not None:
                try:
                    found = marshal.loads(self._macros_file(arch, profile).read_bytes())
                except (OSError, EOFError, ValueError, TypeError):
                    found = None
                if isinstance(found, dict) and all(
                        isinstance(v, tuple) and len(v) == 3 for v in found.values()):
                    self._known[key] = found
        return self._known[key]

    def _macros_file(self, arch: str, profile: str) -> Path:
        assert self.directory is not None
        return self.directory / f"macros-{arch}-{profile}.marshal"

    def drop(self) -> None:
        """Write nothing at exit (``api.forget``)."""
        self._ends.clear()

    # -- files ------------------------------------------------------------------------
    def save(self) -> None:
        """Write the first and the last whole pass of each arch and profile that was
        worked out here (at exit: the trees a later process may patch)."""
        self.write(self.take())

    def take(self) -> list[tuple[str, str, list[tuple[str, _Kept]]]]:
        """What ``save`` is to write, taken from the store now: (arch, profile, [(shape,
        pass)]) for ``write``, which may then run in another thread while this one goes
        on (``api.write_passes_soon``)."""
        ends, self._ends = self._ends, {}
        return [(arch, profile, [(key[1], self._memory[key]) for key in keys])
                for (arch, profile), keys in ends.items() if keys]

    def write(self, taken: list[tuple[str, str, list[tuple[str, _Kept]]]]) -> None:
        """Write what ``take`` took."""
        if self.directory is None or not taken:
            return
        if not self.directory.exists():  # another code's passes are of no more use
            for stale in self.directory.parent.glob("passes-*"):
                if stale != self.directory:  # a concurrent worker may have just made it
                    shutil.rmtree(stale, ignore_errors=True)
        for arch, profile, passes in taken:
            learned: dict[str, Shortcut] = {}
            for shape, kept in passes:
                decls = kept.decls
                path = self.directory / f"{arch}-{shape}.pickle"
                if not path.exists():
                    _write(path, (kept.headers, kept.lines.tobytes(),
                                  (decls.typedefs, decls.tags, decls.enumerators, decls.types)))
                learned.update(kept.learned)  # the last one's shortcuts win
            if learned:
                _write(self._macros_file(arch, profile), marshal.dumps(learned))
        keep_newest(self.directory.glob("*-*.pickle"), MAX_FILES)

    def _read(self, arch: str, key: str) -> _Kept | None:
        if self.directory is None:
            return None
        path = self.directory / f"{arch}-{key}.pickle"
        found: Any = self._load(path)
        try:
            headers, line_bytes, (typedefs, tags, enumerators, types) = found
            lines = array("l")
            lines.frombytes(line_bytes)
            if not (isinstance(headers, tuple) and isinstance(typedefs, dict)
                    and isinstance(tags, dict) and isinstance(enumerators, dict)
                    and isinstance(types, dict)):
                return None
            decls = Declarations.walked(TARGETS[arch], lambda f: "", typedefs, tags,
                                        enumerators, types)
        except (TypeError, ValueError, KeyError):
            return None
        kept = _Kept(decls, headers, lines, {})
        self._remember((arch, key), kept)
        try:
            os.utime(path)  # the least recently used go first (``keep_newest``)
        except OSError:
            pass
        return kept

    def _load(self, path: Path) -> object:
        try:
            with open(path, "rb") as f:
                return _Unpickler(f).load()
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
                IndexError, TypeError, ValueError, MemoryError):
            return None


def _write(path: Path, value: object) -> None:
    """VALUE (bytes as they are, else pickled) written to PATH atomically; a cache that
    cannot be written is no error."""
    try:
        data = value if isinstance(value, bytes) \
            else pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, RecursionError, ValueError):
        return
    atomic.write_cache(path, data)


# What the files may hold: the engine's value classes and nothing else.
_ALLOWED = {
    "xenpatch.abi.c.layout": {"Scalar", "Void", "Pointer", "Function", "Array", "Record",
                              "Enum", "Aligned", "Member"},
    "xenpatch.abi.c.cdefs": {"IntType"},
    "xenpatch.abi.model": {"TypeInfo", "Field", "Enumerator"},
    "builtins": {"frozenset", "set"},
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name not in _ALLOWED.get(module, ()):
            raise pickle.UnpicklingError(f"{module}.{name} is not a value of the engine")
        return super().find_class(module, name)


@cache
def directory_under(cache_dir: Path) -> Path:
    """Where the files of this code's passes are under CACHE_DIR: one directory per code
    identity (what decides the declarations)."""
    digest = hashlib.sha256(code_identity().encode()).hexdigest()[:16]
    return cache_dir / f"passes-{digest}"

