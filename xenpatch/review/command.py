"""The ``review`` command: read a series, review it against a Xen tree, report or reply.

Exit codes (DESIGN.md): 0 no error-level finding; 1 an error-level
finding; 2 bad input (a malformed mbox, no patch in it, an unknown
revision, a Message-ID the archive does not have, a limit exceeded); 3
the environment (archive unreachable, git or cpp missing, SMTP failure).
``--send`` mails the replies through the mail module: a dry run (the mbox
is the output) unless ``--yes``.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from pathlib import Path

from .. import gitrepo, xentree
from ..config import Config, series_date
from ..result import Result
from . import engine, report, sources
from .series import assemble

FALLBACK_SENDER = "xenpatch review <review@xenpatch.invalid>"


def _sender(config: Config, tree: Path, sending: bool) -> str:
    """The From: of the replies: the one identity every command uses (xenpatch/identity.py);
    a reply only written out (no --send --yes) may go without one, under a visible
    placeholder, as the demo's commits do."""
    from .. import identity
    from ..errors import ConfigError

    try:
        return identity.mail_from(config, gitrepo.config_values(tree))
    except ConfigError:
        if sending:
            raise
        return FALLBACK_SENDER


def reproduce(args: argparse.Namespace, archive: str, r: engine.Review) -> str:
    """The command a reader of the reply can run: by Message-ID from the list's archive when the
    series came from the list, else with the SOURCE as given."""
    words = ["xenpatch", "review"]
    mid = r.series.message_id
    if mid and not mid.endswith("@xenpatch.invalid") and archive:
        words += [f"<{mid}>", "--archive", archive]
    else:
        words.append(args.source)
    words += ["--base", r.base.sha, "--version", str(r.series.version)]
    return " ".join(shlex.quote(w) for w in words)


def review(args: argparse.Namespace, config: Config) -> Result:
    limits = sources.Limits.from_config(config)
    archive = args.archive or config.get("list", "archive")
    mails = sources.load(args.source, archive=archive, message_id=args.message_id, limits=limits)
    series = assemble(mails, args.review_version, max_patches=limits.max_patches)
    tree = xentree.resolve(config)
    cache = config.get("abi", "cache")
    settings = engine.Settings(arches=tuple(config.get("abi", "arches")), cpp=config.get("abi", "cpp"),
                               cache_dir=config.resolve_path(cache) if cache else None,
                               jobs=config.get("abi", "jobs"), suppress=config.suppress,
                               configured_base=config.get("tree", "base"))
    r = engine.review(series, tree, args.review_base, settings)
    code = 1 if r.has_errors else 0
    messages: tuple[str, ...] = (f"review: base {r.base.sha[:12]} ({r.base.reason}); "
                f"{len(r.findings)} finding(s)",)
    if args.format == "json":
        return Result.of_json(report.review_json(r), code, args.output, messages)
    if args.format == "markdown":
        return Result(code, report.review_markdown(r), args.output, messages)
    if args.format == "text" and not args.send:
        return Result(code, report.review_text(r), args.output, messages)
    date = series_date(config.get("series", "date"), os.environ)
    sender = _sender(config, tree, bool(args.send and args.yes))
    domain = parseaddr(sender)[1].rpartition("@")[2] or "xenpatch.invalid"
    rs = report.ReplySettings(sender=sender, date=format_datetime(date),
                              list_address=config.get("list", "address"),
                              command=reproduce(args, archive, r), domain=domain)
    out = report.replies(r, rs)
    text = report.replies_mbox(out)
    if not out:
        messages += ("no reply: no finding worth a mail (only facts, or nothing at all)",)
    if not args.send:
        return Result(code, text, args.output, messages)
    return _send(args, config, tree, out, text, code, messages)


def _send(args: argparse.Namespace, config: Config, tree: Path, out: tuple, text: str, code: int,
          messages: tuple[str, ...]) -> Result:
    from ..mail import smtp

    if not out:
        return Result(code, "", args.output, (*messages, "nothing to send: no finding worth a reply"))
    if not args.yes:
        return Result(code, text, args.output,
                      (*messages, f"dry run: nothing sent; {len(out)} repl"
                       f"{'y' if len(out) == 1 else 'ies'} written out; --yes sends them"))
    from ..mail import send as mailsend
    from ..mail.compose import Outgoing

    settings = smtp.settings_from(config, gitrepo.config_values(tree), os.environ)
    plan = mailsend.plan_messages(str(out[0].message["From"]), out)
    sent: list[str] = []

    class Record:  # review --send keeps no resume state: a rerun reviews and mails anew
        def before(self, pending: Sequence[Outgoing]) -> None:
            pass

        def accepted(self, o: Outgoing) -> None:
            sent.append(o.message_id)

    mailsend.deliver(plan, settings, Record())
    when = datetime.now(UTC).replace(microsecond=0).isoformat()
    return Result(code, text, args.output,
                  (*messages, f"sent {len(sent)} repl{'y' if len(sent) == 1 else 'ies'} via "
                   f"{settings.where} at {when}"))
