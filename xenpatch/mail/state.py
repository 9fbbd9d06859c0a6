"""The resumable send record kept in a series directory: the plan, and what was accepted.

``SERIES_DIR/.xenpatch-send.json`` holds the Message-IDs, the date and the
thread root chosen for the series (so a rerun threads the same way) and,
for each message the server accepted, when.  It is rewritten atomically
after every accepted message, so an interrupted send resumes without
sending anything twice.  It never holds credentials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .. import atomic
from ..errors import InputError

STATE_FILE = ".xenpatch-send.json"
SCHEMA = "xenpatch-send-state/1"


@dataclass(frozen=True)
class SendState:
    """The plan of one series send and the messages already accepted (file name -> time)."""

    message_ids: MappingProxyType[str, str]
    date: datetime
    in_reply_to: str | None
    sent: MappingProxyType[str, str]

    @property
    def started(self) -> bool:
        return bool(self.sent)

    def with_sent(self, name: str, when: datetime) -> SendState:
        sent = dict(self.sent)
        sent[name] = when.isoformat()
        return replace(self, sent=MappingProxyType(sent))

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "date": self.date.isoformat(), "in_reply_to": self.in_reply_to,
                "messages": [{"file": name, "message_id": mid, "sent": self.sent.get(name)}
                             for name, mid in sorted(self.message_ids.items())]}


def new_state(message_ids: dict[str, str], date: datetime, in_reply_to: str | None) -> SendState:
    return SendState(MappingProxyType(dict(message_ids)), date, in_reply_to, MappingProxyType({}))


def state_path(series_dir: Path) -> Path:
    return series_dir / STATE_FILE


def load_state(series_dir: Path) -> SendState | None:
    """The record of an earlier send of this series, or None."""
    path = state_path(series_dir)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"schema is {doc.get('schema')!r}, not {SCHEMA!r}")
        messages = doc["messages"]
        ids = {m["file"]: m["message_id"] for m in messages}
        sent = {m["file"]: m["sent"] for m in messages if m.get("sent")}
        return SendState(MappingProxyType(ids), datetime.fromisoformat(doc["date"]),
                         doc.get("in_reply_to"), MappingProxyType(sent))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a send record ({e}); remove it to start over") from e


def save_state(series_dir: Path, state: SendState) -> None:
    """Write the record atomically (a crash leaves the old one or the new one)."""
    path = state_path(series_dir)
    try:
        atomic.write(path, json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n")
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from e


def reconcile(state: SendState, names: list[str], in_reply_to: str | None) -> SendState:
    """Check that a rerun sends the same series the same way; unsent new files get no ID here."""
    if not state.started:
        return state
    planned, now = set(state.message_ids), set(names)
    if planned != now:
        changed = sorted(planned ^ now)[0]
        raise InputError(f"{changed}: the series changed since it was partly sent; "
                         f"remove {STATE_FILE} to send it as a new series")
    if in_reply_to is not None and in_reply_to != state.in_reply_to:
        raise InputError(f"--in-reply-to {in_reply_to}: the series was partly sent "
                         f"replying to {state.in_reply_to}")
    return state
