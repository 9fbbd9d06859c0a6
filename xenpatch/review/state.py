"""The watch bot's memory in SQLite: messages seen, series versions and their reviews, claims, replies.

One file (``--state``, default ``<cache>/watch.sqlite``), in WAL mode so
``xenpatch claims`` can read while the bot writes.  Crash safety comes from
the order of writes, not from luck:

* a message is recorded as seen only after what it carries is known: a
  patch mail's series version is recorded (``pending``) in the same
  transaction, so a kill before that commit re-reads the message next pass;
* a review's outputs (JSON, reply ``.eml``) are written to ``--out`` first,
  atomically, under names fixed by the series version; then ONE transaction
  marks the version ``reviewed``, stores its outcome and claims, ends the
  claims of the versions it supersedes and queues its replies.  A kill
  before that commit leaves the version ``pending``; the next run finds its
  outputs with the same input digest and records them without reviewing
  again (``adopt``), or reviews it when they are not there;
* a reply is marked ``sending`` (with its Message-ID) in a committed
  transaction before SMTP starts and ``sent`` after the server accepted it.
  A reply found ``sending`` on restart is looked up by its Message-ID in the
  archives the bot watches (it went to the list): found, it is marked sent;
  not found, it is sent again under the same Message-ID (list archives and
  mail readers drop a second copy of one Message-ID).  Only a kill between
  the server's ``250`` and the commit after it can leave a reply in that
  state.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .claims import Claim, SeriesRef

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, source TEXT NOT NULL, root TEXT NOT NULL,
    locator TEXT NOT NULL, status TEXT NOT NULL, seen_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS messages_root ON messages (root);
CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, version INTEGER NOT NULL,
    message_id TEXT NOT NULL, subject TEXT NOT NULL, author TEXT NOT NULL,
    source TEXT NOT NULL, root TEXT NOT NULL, total INTEGER NOT NULL,
    status TEXT NOT NULL, first_seen REAL NOT NULL, reviewed_at REAL,
    digest TEXT, outcome TEXT, superseded INTEGER NOT NULL DEFAULT 0,
    UNIQUE (key, version));
CREATE TABLE IF NOT EXISTS claims (
    series_id INTEGER NOT NULL REFERENCES series (id), kind TEXT NOT NULL,
    family TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, header TEXT NOT NULL,
    line INTEGER NOT NULL, open INTEGER NOT NULL DEFAULT 1, ended TEXT);
CREATE INDEX IF NOT EXISTS claims_open ON claims (open, kind, family, key);
CREATE TABLE IF NOT EXISTS replies (
    message_id TEXT PRIMARY KEY, series_id INTEGER NOT NULL REFERENCES series (id),
    path TEXT NOT NULL, status TEXT NOT NULL, queued_at REAL NOT NULL,
    intent_at REAL, sent_at REAL);
"""


@dataclass(frozen=True)
class SeriesRow:
    """One series version the bot knows about."""

    id: int
    key: str
    version: int
    message_id: str
    subject: str
    author: str
    source: str
    root: str
    total: int
    status: str  # pending | reviewed
    first_seen: float
    reviewed_at: float | None
    digest: str | None
    outcome: dict[str, Any] | None
    superseded: bool


@dataclass(frozen=True)
class ReplyRow:
    message_id: str
    series_id: int
    path: str
    status: str  # queued | sending | sent


@dataclass(frozen=True)
class OpenClaim:
    claim: Claim
    holder: SeriesRef
    series_id: int
    key: str  # the holder's series key


def default_path() -> Path:
    """``$XENPATCH_CACHE/watch.sqlite``, else ``$XDG_CACHE_HOME/xenpatch/watch.sqlite``."""
    cache = os.environ.get("XENPATCH_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xenpatch"
    return Path(cache) / "watch.sqlite"


class State:
    """An open state file; every method is one transaction unless it says otherwise."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        try:
            if readonly:
                if not path.is_file():
                    raise InputError(f"--state {path}: no such file (the bot has not run)")
                self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30,
                                          isolation_level=None)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(_SCHEMA)
                self._check_version()
        except sqlite3.DatabaseError as e:
            raise InputError(f"--state {path}: not a xenpatch state file ({e})") from e
        except OSError as e:
            raise InputError(f"--state {path}: cannot open: {e.strerror}") from e

    def _check_version(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise InputError(f"--state {self.path}: schema {row[0]}, this xenpatch "
                             f"reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- messages and cursors ----------------------------------------------------------

    def unseen(self, message_ids: Iterable[str]) -> list[str]:
        """The ids of MESSAGE_IDS not recorded yet, in the order given."""
        ids = list(dict.fromkeys(message_ids))
        seen: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(r[0] for r in self.db.execute(
                f"SELECT message_id FROM messages WHERE message_id IN ({marks})", chunk))
        return [i for i in ids if i not in seen]

    def mark_seen(self, db: sqlite3.Connection, message_id: str, source: str, root: str,
                  locator: str, status: str) -> None:
        """Inside a caller's transaction: MESSAGE_ID is handled (STATUS says how)."""
        db.execute("INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                   (message_id, source, root, locator, status, time.time()))

    def thread_locators(self, source: str, root: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT locator FROM messages WHERE source = ? AND root = ? ORDER BY seen_at",
            (source, root))]

    def cursor(self, source: str) -> str | None:
        row = self.db.execute("SELECT value FROM cursors WHERE source = ?", (source,)).fetchone()
        return row[0] if row else None

    def set_cursor(self, db: sqlite3.Connection, source: str, value: str) -> None:
        db.execute("INSERT INTO cursors VALUES (?, ?) ON CONFLICT (source) DO UPDATE "
                   "SET value = excluded.value", (source, value))

    # --- series --------------------------------------------------------------------------

    def series(self, key: str, version: int) -> SeriesRow | None:
        row = self.db.execute("SELECT * FROM series WHERE key = ? AND version = ?",
                              (key, version)).fetchone()
        return _series_row(row) if row else None

    def add_pending(self, db: sqlite3.Connection, *, key: str, version: int, message_id: str,
                    subject: str, author: str, source: str, root: str, total: int) -> None:
        """Inside a caller's transaction: a series version seen for the first time."""
        db.execute("INSERT OR IGNORE INTO series (key, version, message_id, subject, author, "
                   "source, root, total, status, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                   "'pending', ?)", (key, version, message_id, subject, author, source, root,
                                     total, time.time()))

    def pending(self) -> list[SeriesRow]:
        return [_series_row(r) for r in self.db.execute(
            "SELECT * FROM series WHERE status = 'pending' ORDER BY first_seen, id")]

    def all_series(self) -> list[SeriesRow]:
        return [_series_row(r) for r in self.db.execute("SELECT * FROM series ORDER BY id")]

    def record_review(self, series_id: int, digest: str, outcome: dict[str, Any],
                      claims: Sequence[Claim], replies: Sequence[tuple[str, str]]) -> None:
        """ONE transaction: the version is reviewed, with its outcome, claims and replies;
        older versions of the same series are superseded and their claims end."""
        with self.transaction() as db:
            row = db.execute("SELECT key, version, status FROM series WHERE id = ?",
                             (series_id,)).fetchone()
            if row is None or row[2] == "reviewed":
                return
            key, version = row[0], row[1]
            db.execute("UPDATE series SET status = 'reviewed', reviewed_at = ?, digest = ?, "
                       "outcome = ? WHERE id = ?",
                       (time.time(), digest, json.dumps(outcome, sort_keys=True), series_id))
            older = [r[0] for r in db.execute(
                "SELECT id FROM series WHERE key = ? AND version < ?", (key, version))]
            for sid in older:
                db.execute("UPDATE series SET superseded = 1 WHERE id = ?", (sid,))
                db.execute("UPDATE claims SET open = 0, ended = ? WHERE series_id = ? AND open",
                           (f"superseded by v{version}", sid))
            newer = db.execute("SELECT 1 FROM series WHERE key = ? AND version > ? AND "
                               "status = 'reviewed'", (key, version)).fetchone()
            if newer:
                db.execute("UPDATE series SET superseded = 1 WHERE id = ?", (series_id,))
            for c in claims:
                db.execute("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (series_id, c.kind, c.family, c.key, c.name, c.header, c.line,
                            0 if newer else 1, "superseded" if newer else None))
            for message_id, path in replies:
                db.execute("INSERT OR IGNORE INTO replies VALUES (?, ?, ?, 'queued', ?, NULL, "
                           "NULL)", (message_id, series_id, path, time.time()))

    # --- claims --------------------------------------------------------------------------

    def open_claims(self) -> list[OpenClaim]:
        rows = self.db.execute(
            "SELECT c.kind, c.family, c.key, c.name, c.header, c.line, s.subject, s.version, "
            "s.message_id, s.id, s.key FROM claims c JOIN series s ON s.id = c.series_id "
            "WHERE c.open ORDER BY s.id, c.header, c.line, c.kind, c.key")
        return [OpenClaim(Claim(*r[:6]), SeriesRef(r[6], r[7], r[8]), r[9], r[10])
                for r in rows]

    def end_merged(self, names: frozenset[str], base: str) -> int:
        """Close every open claim whose name is in the base now; how many were closed."""
        closed = 0
        with self.transaction() as db:
            rows = db.execute("SELECT rowid, name FROM claims WHERE open").fetchall()
            for rowid, name in rows:
                if name in names:
                    db.execute("UPDATE claims SET open = 0, ended = ? WHERE rowid = ?",
                               (f"merged: {name} is in {base[:12]}", rowid))
                    closed += 1
        return closed

    # --- replies -------------------------------------------------------------------------

    def replies(self, statuses: Sequence[str] = ("queued", "sending")) -> list[ReplyRow]:
        marks = ",".join("?" * len(statuses))
        return [ReplyRow(*r) for r in self.db.execute(
            f"SELECT message_id, series_id, path, status FROM replies WHERE status IN ({marks}) "
            "ORDER BY queued_at, message_id", tuple(statuses))]

    def mark_reply(self, message_id: str, status: str) -> None:
        column = {"sending": "intent_at", "sent": "sent_at"}[status]
        with self.transaction() as db:
            db.execute(f"UPDATE replies SET status = ?, {column} = ? WHERE message_id = ?",
                       (status, time.time(), message_id))


def _series_row(r: Sequence[Any]) -> SeriesRow:
    return SeriesRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                     r[12], json.loads(r[13]) if r[13] else None, bool(r[14]))
