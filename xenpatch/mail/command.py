"""The ``maintainers`` and ``send`` commands: arguments in, library calls, a Result out.

Before ``--yes`` mails anything, the series is reviewed against its base
by ``review``'s engine (``review/preflight.py``): an error-level finding
stops the send, warnings are shown and the send goes on; the report says
how long the pre-flight took.  A dry run mails nothing and runs none.

Exit codes (DESIGN.md): 0 done (a dry run, a send, or nothing left to
send); 1 the pre-flight review found an error-level finding (nothing sent;
``--force`` sends anyway); 2 bad input or configuration (no series, not a
patch, not an address, no SMTP server); 3 the SMTP server failed
(connection, TLS, authentication, refusal) -- what was accepted before is
recorded.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..result import Result
from . import compose, smtp
from . import send as sending
from . import state as st
from . import tree as mtree

if TYPE_CHECKING:
    from ..review.preflight import Preflight


def maintainers(args: argparse.Namespace, config: Config) -> Result:
    found = mtree.recipients_for(mtree.resolve_tree(config), args.paths)
    if args.format == "json":
        return Result.of_json(found.as_json())
    return Result(text="".join(f"To: {a}\n" for a in found.to)
                  + "".join(f"Cc: {a}\n" for a in found.cc))


def send(args: argparse.Namespace, config: Config) -> Result:
    import os
    series_dir = Path(args.series_dir)
    git_config = sending.git_config_for(series_dir)
    request = sending.SeriesRequest(series_dir, tuple(args.to), tuple(args.cc), args.in_reply_to)
    planned = sending.plan_series(config, request, git_config)
    plan = planned.plan
    if not plan.pending:
        return _report(args, plan.messages, planned.state, "nothing to send: all "
                       f"{len(plan.messages)} messages were sent before "
                       f"({st.state_path(series_dir)})")
    if not args.yes:
        mbox = Path(args.mbox) if args.mbox else series_dir / "xenpatch-dry-run.mbox"
        sending.write_mbox(mbox, plan.pending)
        return _report(args, plan.pending, planned.state, f"dry run: nothing sent; "
                       f"{_n(len(plan.pending))} written to {mbox}; --yes sends them")
    # Every message is built; before any of them leaves, the series is reviewed.
    from ..review.preflight import preflight
    check = preflight(series_dir, mtree.resolve_tree(config), config)
    if check.has_errors and not getattr(args, "force", False):
        return _report(args, (), planned.state, "nothing sent: the pre-flight review found "
                       "errors (--force sends anyway)", check, exit_code=1)
    forced = " (--force: sent despite the pre-flight errors)" if check.has_errors else ""
    settings = smtp.settings_from(config, git_config, os.environ)
    if args.mbox:
        sending.write_mbox(Path(args.mbox), plan.pending)
    record = sending.SeriesRecord(series_dir, planned.state)
    sent = sending.deliver(plan, settings, record)
    before = len(plan.messages) - len(plan.pending)
    return _report(args, plan.pending, record.state, f"sent {_n(sent)} via {settings.where}"
                   + (f" ({before} sent before)" if before else "") + forced, check)


def _n(count: int) -> str:
    return f"{count} message" + ("" if count == 1 else "s")


def _report(args: argparse.Namespace, messages: tuple[compose.Outgoing, ...],
            state: st.SendState, summary: str, check: Preflight | None = None,
            exit_code: int = 0) -> Result:
    if getattr(args, "quiet", False) and args.format != "json" and exit_code == 0:
        return Result(exit_code)  # -q: the exit code says it; nothing else to show
    if args.format == "json":
        doc: dict[str, Any] = {"schema": "xenpatch-send/1", "summary": summary, "messages": [
            {"file": m.name, "message_id": m.message_id, "subject": m.subject, "to": list(m.to),
             "cc": list(m.cc), "in_reply_to": m.in_reply_to, "sent": m.name in state.sent}
            for m in messages]}
        if check is not None:
            doc["preflight"] = check.to_json()
        return Result.of_json(doc, exit_code)
    lines = check.lines() if check is not None else []
    for m in messages:
        lines += [f"{m.name}  {m.message_id}", f"  Subject: {m.subject}",
                  f"  To: {', '.join(m.to)}"]
        lines += [f"  Cc: {', '.join(m.cc)}"] if m.cc else []
        lines += [f"  In-Reply-To: {m.in_reply_to}"] if m.in_reply_to else []
    return Result(exit_code, "\n".join(lines + [summary]) + "\n")
