"""The on-disk cache of per-arch ABI models, keyed by everything that decides them.

Key: SHA-256 over the bytes of every header (with its path), the arch, the
profile, the identity of the cpp binary (its resolved path, size and
mtime) and of xenpatch's ABI code (version plus the size and mtime of each
``xenpatch/abi`` source file and include/ header).  Values are
``ArchModel`` JSON (compact, sorted keys), written atomically; a warm ``abi
dump`` splices the cached text into its output without building the model
(``document_text``).

Beside the models, ``SegmentCache`` keeps what pycparser made of each piece
of preprocessed text (``parse.SegmentParser``), keyed by the piece's bytes
and its typedef context, in one SQLite file per parser identity: a tree
that differs from a cached one in a few declarations (``generate``'s
patched tree, the next commit in a history) re-parses only those.  The
file of an older parser identity is removed when a new one is made.

Location: ``[abi].cache``, else ``$XDG_CACHE_HOME/xenpatch/abi``
(``~/.cache/xenpatch/abi``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from .model import AbiModel, ArchModel, Source
from .sources import HeaderSource

if TYPE_CHECKING:
    from .c.parse import Parsed

_HERE = Path(__file__).resolve().parent


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xenpatch" / "abi"


def _code_identity() -> str:
    parts = [__version__]
    # Every module of the engine and its front end (abi/c/) and the bundled headers.
    for path in sorted([*_HERE.rglob("*.py"), *_HERE.glob("c/include/**/*.h")]):
        st = path.stat()
        parts.append(f"{path.relative_to(_HERE)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def _cpp_identity(cpp: str) -> str:
    found = shutil.which(cpp)
    if found is None:
        return f"missing:{cpp}"
    real = os.path.realpath(found)
    st = os.stat(real)
    return f"{real}:{st.st_size}:{st.st_mtime_ns}"


@dataclass(frozen=True)
class Key:
    digest: str  # without the arch

    @classmethod
    def of(cls, source: HeaderSource, profile: str, cpp: str) -> Key:
        h = hashlib.sha256()
        for text in (_code_identity(), _cpp_identity(cpp), profile):
            h.update(text.encode() + b"\0")
        for rel, data in sorted(source.files.items()):
            h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0")
            h.update(data)
        return cls(h.hexdigest())

    def path(self, cache_dir: Path, arch: str) -> Path:
        return cache_dir / self.digest[:2] / f"{self.digest}-{arch}.json"


# Arch models kept (about 0.2-0.8 MB each): the 32 snapshots of 4 arches used
# last.  Entries are touched when read, so the least recently used go first.
MAX_MODELS = 128


def load_text(cache_dir: Path | None, key: Key, arch: str) -> str | None:
    """The cached JSON text of ARCH's model, or None."""
    path = key.path(cache_dir or default_dir(), arch)
    try:
        text = path.read_text(encoding="utf-8")
        os.utime(path)
    except OSError:
        return None
    return text


def prune(cache_dir: Path | None, keep: int = MAX_MODELS) -> int:
    """Remove all but the KEEP most recently used arch models; the number removed."""
    entries = []
    for path in (cache_dir or default_dir()).glob("??/*.json"):
        try:
            entries.append((path.stat().st_mtime_ns, path))
        except OSError:  # removed by a concurrent run
            continue
    entries.sort()
    stale = entries[:max(0, len(entries) - keep)]
    for _, path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def load(cache_dir: Path | None, key: Key, arch: str) -> ArchModel | None:
    """The cached model, or None (a missing or unreadable entry is a miss)."""
    text = load_text(cache_dir, key, arch)
    if text is None:
        return None
    try:
        return ArchModel.from_json(arch, json.loads(text))
    except (ValueError, KeyError, TypeError):
        return None


def arch_text(model: ArchModel) -> str:
    """MODEL as compact JSON with sorted keys (json's C encoder: ten times faster than
    the indented form, which only the pure-Python encoder writes)."""
    return json.dumps(model.to_json(), sort_keys=True, separators=(",", ":"))


def store(cache_dir: Path | None, key: Key, model: ArchModel) -> None:
    store_text(cache_dir, key, model.arch, arch_text(model))


def store_text(cache_dir: Path | None, key: Key, arch: str, text: str) -> None:
    """Write an arch's model TEXT under KEY; a cache that cannot be written is skipped."""
    path = key.path(cache_dir or default_dir(), arch)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        prune(cache_dir)
    except OSError:
        return


def document_text(source: Source, arch_texts: Mapping[str, str]) -> str:
    """The ``xenpatch-abi/1`` document of SOURCE with ARCH_TEXTS (``arch_text``) spliced
    in: compact JSON, the same document as ``AbiModel.dumps()``."""
    marks = {arch: f"\0xenpatch-arch-{arch}" for arch in arch_texts}
    doc = AbiModel(source).to_json()
    doc["arches"] = marks
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    for arch, mark in marks.items():
        text = text.replace(json.dumps(mark), arch_texts[arch], 1)
    return text + "\n"


_BATCH = 500  # SQLite's default limit on host parameters is 999


class SegmentCache:
    """``parse.SegmentStore`` in SQLite; a cache that cannot be read or written is a miss."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def under(cls, cache_dir: Path | None) -> SegmentCache:
        import pycparser

        from .c import parse

        st = Path(parse.__file__).stat()
        ident = f"{pycparser.__version__}:{sys.version_info[:2]}:{st.st_size}:{st.st_mtime_ns}"
        digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
        return cls((cache_dir or default_dir()) / f"pieces-{digest}.sqlite")

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # another parser's pieces are of no more use
            for stale in self.path.parent.glob("pieces-*.sqlite"):
                if stale != self.path:  # a concurrent worker may have just made it
                    stale.unlink(missing_ok=True)
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        con.execute("CREATE TABLE IF NOT EXISTS piece (text BLOB, context BLOB, value BLOB, "
                    "PRIMARY KEY (text, context)) WITHOUT ROWID")
        return con

    def get_many(self, keys: list[bytes]) -> dict[bytes, Parsed]:
        """The entries of the pieces whose text keys are KEYS, in any context."""
        if not keys or not self.path.exists():
            return {}
        from .c.parse import decode

        found: dict[bytes, Parsed] = {}
        try:
            con = self._connect()
            try:
                for i in range(0, len(keys), _BATCH):
                    batch = keys[i:i + _BATCH]
                    rows = con.execute("SELECT text, context, value FROM piece WHERE text IN ("
                                       + ",".join("?" * len(batch)) + ")", batch)
                    for text, context, value in rows:
                        found[text + context] = decode(value)
            finally:
                con.close()
        except (sqlite3.Error, OSError, EOFError, IndexError, TypeError, ValueError):
            return {}
        return found

    def put_many(self, items: dict[bytes, Parsed]) -> None:
        """Store ITEMS (text key + context key -> entry) in one transaction."""
        from .c.parse import TEXT_KEY, encode

        rows = []
        for key, value in items.items():
            try:
                rows.append((key[:TEXT_KEY], key[TEXT_KEY:], encode(value)))
            except ValueError:  # not encodable: parsed again next time
                continue
        try:
            con = self._connect()
            try:
                with con:
                    con.execute("BEGIN IMMEDIATE")
                    con.executemany("INSERT OR IGNORE INTO piece VALUES (?, ?, ?)", rows)
            finally:
                con.close()
        except (sqlite3.Error, OSError):
            return
