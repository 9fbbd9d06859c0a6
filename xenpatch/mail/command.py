"""The ``maintainers`` and ``send`` commands: arguments in, library calls, output out.

Exit codes (DESIGN.md): 0 done (a dry run, a send, or nothing left to
send); 2 bad input or configuration (no series, not a patch, not an
address, no SMTP server); 3 the SMTP server failed (connection, TLS,
authentication, refusal) -- what was accepted before is recorded.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from .. import cli, gitrepo
from ..config import Config, series_date
from ..errors import InputError
from . import compose, smtp
from . import state as st
from . import tree as mtree
from .maintainers import Recipients


def maintainers(args: argparse.Namespace, config: Config) -> int:
    found = mtree.recipients_for(mtree.resolve_tree(config), args.paths)
    if args.format == "json":
        cli.emit_json(found.as_json())
    else:
        cli.emit("".join(f"To: {a}\n" for a in found.to) + "".join(f"Cc: {a}\n" for a in found.cc))
    return 0


def read_series(series_dir: Path) -> tuple[compose.PatchFile, ...]:
    """The patch files of SERIES_DIR, checked and in order."""
    if not series_dir.is_dir():
        raise InputError(f"{series_dir}: not a directory")
    files = []
    for path in sorted(series_dir.iterdir()):
        if path.is_file() and compose.SERIES_FILE.match(path.name):
            files.append(compose.parse_patch_file(path.name, mtree.read_text(path).encode("latin-1")))
    return compose.check_series(files, str(series_dir))


def sender(config: Config, git_config: dict[str, str], first: compose.PatchFile) -> str:
    """From: [identity], else sendemail.from, else git's user.name/user.email, else the author."""
    name = config.get("identity", "name") or git_config.get("user.name", "")
    email = config.get("identity", "email")
    if not email and git_config.get("sendemail.from"):
        return compose.check_address("sendemail.from", git_config["sendemail.from"])
    email = email or git_config.get("user.email", "")
    if not email:
        return first.author
    return compose.check_address("[identity]", f"{name} <{email}>" if name else email)


def plan_messages(args: argparse.Namespace, config: Config, series_dir: Path,
                  git_config: dict[str, str]) -> tuple[tuple[compose.Outgoing, ...], st.SendState]:
    """Build every message (nothing is sent here); reuse an earlier send's Message-IDs."""
    files = read_series(series_dir)
    to = [compose.check_address("--to", a) for a in args.to]
    cc = [compose.check_address("--cc", a) for a in args.cc]
    reply_to = compose.check_message_id(args.in_reply_to) if args.in_reply_to else None
    tree = mtree.resolve_tree(config)
    maint, rules = mtree.load_maintainers(tree), mtree.load_rules(tree)
    found: dict[str, Recipients] = {}
    for f in files:
        if not f.is_cover:
            found[f.name] = mtree.to_unicode(
                mtree.mt.for_patches(maint, [(f.name, f.raw.decode("latin-1"))], rules))
    frm = sender(config, git_config, files[0])
    previous = st.load_state(series_dir)
    if previous is not None:
        previous = st.reconcile(previous, [f.name for f in files], reply_to)
    if previous is not None and previous.started:
        state = previous
    else:
        date = series_date(config.get("series", "date"), os.environ)
        state = st.new_state(compose.message_ids(files, frm, date), date, reply_to)
    list_address = compose.check_address("[list].address", config.get("list", "address"))
    mail = compose.SeriesMail(frm, tuple([list_address] + to),
                              tuple(cc), state.in_reply_to, state.date)
    return compose.compose_series(files, found, state.message_ids, mail), state


def send(args: argparse.Namespace, config: Config) -> int:
    series_dir = Path(args.series_dir)
    git_config = gitrepo.config_values(series_dir if series_dir.is_dir() else Path.cwd())
    messages, state = plan_messages(args, config, series_dir, git_config)
    pending = tuple(m for m in messages if m.name not in state.sent)
    if not pending:
        _report(args, messages, state, "nothing to send: all "
                f"{len(messages)} messages were sent before ({st.state_path(series_dir)})")
        return 0
    if not args.yes:
        mbox = Path(args.mbox) if args.mbox else series_dir / "xenpatch-dry-run.mbox"
        _write(mbox, compose.mbox(pending))
        _report(args, pending, state, f"dry run: nothing sent; {_n(len(pending))} "
                f"written to {mbox}; --yes sends them")
        return 0
    settings = smtp.settings_from(config, git_config, os.environ)
    if args.mbox:
        _write(Path(args.mbox), compose.mbox(pending))
    st.save_state(series_dir, state)  # the plan first: a rerun reuses its Message-IDs
    current = [state]

    def accepted(out: compose.Outgoing) -> None:
        current[0] = current[0].with_sent(out.name, datetime.now(UTC))
        st.save_state(series_dir, current[0])

    envelope = getaddresses([pending[0].message["From"]])[0][1]
    smtp.deliver(settings, envelope, pending, accepted)
    before = len(messages) - len(pending)
    _report(args, pending, current[0], f"sent {_n(len(pending))} via {settings.where}"
            + (f" ({before} sent before)" if before else ""))
    return 0


def _n(count: int) -> str:
    return f"{count} message" + ("" if count == 1 else "s")


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"--mbox {path}: cannot write: {e.strerror}") from e


def _report(args: argparse.Namespace, messages: tuple[compose.Outgoing, ...],
            state: st.SendState, summary: str) -> None:
    if getattr(args, "quiet", False) and args.format != "json":
        return  # -q: the exit code says it; nothing else to show
    if args.format == "json":
        doc: dict[str, Any] = {"schema": "xenpatch-send/1", "summary": summary, "messages": [
            {"file": m.name, "message_id": m.message_id, "subject": m.subject, "to": list(m.to),
             "cc": list(m.cc), "in_reply_to": m.in_reply_to, "sent": m.name in state.sent}
            for m in messages]}
        cli.emit_json(doc)
        return
    lines = []
    for m in messages:
        lines += [f"{m.name}  {m.message_id}", f"  Subject: {m.subject}",
                  f"  To: {', '.join(m.to)}"]
        lines += [f"  Cc: {', '.join(m.cc)}"] if m.cc else []
        lines += [f"  In-Reply-To: {m.in_reply_to}"] if m.in_reply_to else []
    cli.emit("\n".join(lines + [summary]) + "\n")
