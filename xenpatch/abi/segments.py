"""The segment store: what pycparser made of each piece of preprocessed text, kept across runs.

``SegmentCache`` keeps what each piece of preprocessed text parsed to
(``c.parse.SegmentParser``), keyed by the piece's bytes and its typedef
context, in one SQLite file per parser identity beside the model cache
(``modelcache``): a tree that differs from a cached one in a few
declarations (``generate``'s patched tree, the next commit in a history)
re-parses only those.  The file of an older parser identity is removed when
a new one is made.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from .modelcache import default_dir

if TYPE_CHECKING:
    from .c.parse import Parsed

_BATCH = 500  # SQLite's default limit on host parameters is 999


class SegmentCache:
    """``parse.SegmentStore`` in SQLite; a cache that cannot be read or written is a miss."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def under(cls, cache_dir: Path | None) -> SegmentCache:
        from .c import parse

        digest = hashlib.sha256(parse.identity().encode()).hexdigest()[:16]
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
        """Store ITEMS (text key + context key -> entry) in one transaction.  An entry the
        store has already (its key is its content: another process of the same dump
        stored the pieces the arches have in common) is not encoded again."""
        from .c.parse import TEXT_KEY, encode

        try:
            con = self._connect()
            try:
                texts = sorted({key[:TEXT_KEY] for key in items})
                stored: set[bytes] = set()
                for i in range(0, len(texts), _BATCH):
                    batch = texts[i:i + _BATCH]
                    stored.update(text + context for text, context in con.execute(
                        "SELECT text, context FROM piece WHERE text IN ("
                        + ",".join("?" * len(batch)) + ")", batch))
                rows = []
                for key, value in items.items():
                    if key in stored:
                        continue
                    try:
                        rows.append((key[:TEXT_KEY], key[TEXT_KEY:], encode(value)))
                    except ValueError:  # not encodable: parsed again next time
                        continue
                with con:
                    con.execute("BEGIN IMMEDIATE")
                    con.executemany("INSERT OR IGNORE INTO piece VALUES (?, ?, ?)", rows)
            finally:
                con.close()
        except (sqlite3.Error, OSError):
            return
