"""Sending mail as a library call: plan every message first, then deliver the plan.

b4's rule (b4 ``ez.py``): SMTP connects only after every message is built,
so a bad address or a patch that is not UTF-8 stops the send before anything
leaves the machine.  ``plan_series`` builds a series' messages (nothing is
connected, nothing written); ``deliver`` mails what a plan still has to send
and tells a ``SendRecord`` about each message before and after the server
takes it, so the caller's record (a series' ``.xenpatch-send.json``, the
watch bot's SQLite state) can resume without sending anything twice.  The
``send`` command, ``review --send`` and ``watch --send`` all go through
``deliver``.
"""

from __future__ import annotations

import email
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Protocol

from .. import atomic, identity
from ..config import Config, series_date
from ..errors import InputError, UsageError
from . import compose, smtp
from . import state as st
from . import tree as mtree
from .maintainers import Recipients


class SendRecord(Protocol):
    """Where a caller keeps what was sent: told before SMTP starts and after each acceptance."""

    def before(self, pending: Sequence[compose.Outgoing]) -> None: ...

    def accepted(self, out: compose.Outgoing) -> None: ...


@dataclass(frozen=True)
class SendPlan:
    """Every message of a send, built; ``pending`` those not sent by an earlier run."""

    sender: str
    messages: tuple[compose.Outgoing, ...]
    pending: tuple[compose.Outgoing, ...]

    @property
    def envelope_from(self) -> str:
        return getaddresses([self.sender])[0][1]


@dataclass(frozen=True)
class SeriesRequest:
    """What ``send SERIES_DIR`` was asked: the directory and the extra addresses and thread."""

    series_dir: Path
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    in_reply_to: str | None = None


@dataclass(frozen=True)
class SeriesPlan:
    """A series' plan and its send record (the Message-IDs reruns reuse)."""

    plan: SendPlan
    state: st.SendState
    files: tuple[compose.PatchFile, ...]


def read_series(series_dir: Path) -> tuple[compose.PatchFile, ...]:
    """The patch files of SERIES_DIR, checked and in order."""
    if not series_dir.is_dir():
        raise InputError(f"{series_dir}: not a directory")
    files = []
    for path in sorted(series_dir.iterdir()):
        if path.is_file() and compose.SERIES_FILE.match(path.name):
            files.append(compose.parse_patch_file(path.name, mtree.read_text(path).encode("latin-1")))
    return compose.check_series(files, str(series_dir))


def git_config_for(series_dir: Path) -> dict[str, str]:
    """git's configuration as seen from the series directory (or the current one)."""
    from .. import gitrepo
    return gitrepo.config_values(series_dir if series_dir.is_dir() else Path.cwd())


def plan_series(config: Config, request: SeriesRequest,
                git_config: Mapping[str, str]) -> SeriesPlan:
    """Build every message of the series (nothing is sent or written); reuse an earlier
    send's Message-IDs, date and thread when it was partly sent."""
    files = read_series(request.series_dir)
    to = [compose.check_address("--to", a) for a in request.to]
    cc = [compose.check_address("--cc", a) for a in request.cc]
    # --in-reply-to, else the In-Reply-To: the first file carries (git send-email keeps a
    # patch file's own In-Reply-To: header; generate writes one for a v2 answering v1).
    reply_to = compose.check_message_id(request.in_reply_to) if request.in_reply_to else None
    if reply_to is None and files and files[0].in_reply_to:
        try:
            reply_to = compose.check_message_id(files[0].in_reply_to)
        except UsageError as e:
            raise InputError(f"{files[0].name}: In-Reply-To {files[0].in_reply_to!r} is not a "
                             "Message-ID") from e
    tree = mtree.resolve_tree(config)
    maint, rules = mtree.load_maintainers(tree), mtree.load_rules(tree)
    found: dict[str, Recipients] = {}
    for f in files:
        if not f.is_cover:
            found[f.name] = mtree.to_unicode(
                mtree.mt.for_patches(maint, [(f.name, f.raw.decode("latin-1"))], rules))
    frm = identity.mail_from(config, git_config)
    previous = st.load_state(request.series_dir)
    if previous is not None:
        previous = st.reconcile(previous, [f.name for f in files], reply_to)
    if previous is not None and previous.started:
        state = previous
    else:
        date = series_date(config.get("series", "date"), os.environ)
        state = st.new_state(compose.message_ids(files, frm, date), date, reply_to)
    list_address = compose.check_address("[list].address", config.get("list", "address"))
    mail = compose.SeriesMail(frm, tuple([list_address] + to), tuple(cc), state.in_reply_to,
                              state.date)
    messages = compose.compose_series(files, found, state.message_ids, mail)
    pending = tuple(m for m in messages if m.name not in state.sent)
    return SeriesPlan(SendPlan(frm, messages, pending), state, files)


class SeriesRecord:
    """The send record of a series directory (``mail/state.py``), saved after each message."""

    def __init__(self, series_dir: Path, state: st.SendState) -> None:
        self.series_dir, self.state = series_dir, state

    def before(self, pending: Sequence[compose.Outgoing]) -> None:
        st.save_state(self.series_dir, self.state)  # the plan first: a rerun reuses its IDs

    def accepted(self, out: compose.Outgoing) -> None:
        self.state = self.state.with_sent(out.name, datetime.now(UTC))
        st.save_state(self.series_dir, self.state)


def deliver(plan: SendPlan, settings: smtp.SmtpSettings, record: SendRecord) -> int:
    """Mail PLAN's pending messages through SETTINGS; the number sent.

    RECORD hears ``before`` ahead of the connection and ``accepted`` as the
    server takes each message; an SMTP failure is EnvironmentFailure (exit 3)
    after the accepted ones are recorded."""
    if not plan.pending:
        return 0
    record.before(plan.pending)
    smtp.deliver(settings, plan.envelope_from, plan.pending, record.accepted)
    return len(plan.pending)


def outgoing(name: str, message: EmailMessage) -> compose.Outgoing:
    """A message someone else built (a review reply) as one ``deliver`` can send
    (re-read under the SMTP policy: smtplib sends bytes as they are, and a message
    read with LF line ends would reach the server as one long line)."""
    if message.policy != compose.MAIL_POLICY:
        message = email.message_from_bytes(message.as_bytes(), _class=EmailMessage,
                                           policy=compose.MAIL_POLICY)
    mid = str(message.get("Message-ID", "")).strip()
    if not re.fullmatch(r"<[^<>\s]+@[^<>\s]+>", mid):
        raise InputError(f"{name}: no Message-ID to send it under")
    to = tuple(str(v) for v in message.get_all("To", []))
    cc = tuple(str(v) for v in message.get_all("Cc", []))
    reply = message.get("In-Reply-To")
    refs = tuple(str(message.get("References", "")).split())
    return compose.Outgoing(name, mid, str(message.get("Subject", "")),
                            compose.merge_recipients(to), compose.merge_recipients(cc),
                            str(reply) if reply else None, refs, message)


def plan_messages(sender: str, messages: Sequence[compose.Outgoing],
                  already_sent: Sequence[str] = ()) -> SendPlan:
    """A plan for ready messages; those whose Message-ID is in ALREADY_SENT are not pending."""
    done = set(already_sent)
    return SendPlan(sender, tuple(messages),
                    tuple(m for m in messages if m.message_id not in done))


def write_mbox(path: Path, messages: Sequence[compose.Outgoing], option: str = "--mbox") -> None:
    """The messages as an mboxrd file, written atomically."""
    try:
        atomic.write(path, compose.mbox(messages))
    except OSError as e:
        raise InputError(f"{option} {path}: cannot write: {e.strerror}") from e
