"""The ``watch`` and ``claims`` commands: arguments in, the bot loop or the claims listing, a Result out.

``watch`` exit codes with ``--once`` (DESIGN.md): 0 the pass is complete and
no review in it has an error-level finding; 1 a review of this pass has one;
2 bad input or configuration (a source that is neither a URL nor a mirror,
a state file that is not ours); 3 a feed, git, cpp or the SMTP server failed
during the pass (what it could do is recorded; the rest is retried).
Without ``--once`` the loop runs until SIGTERM or Ctrl-C and exits 0 after
the review in progress.  Log lines go to stderr with timestamps (``-q``:
warnings and errors only; ``-v``: also why a series waits).
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import xentree
from ..config import Config
from ..errors import UsageError
from ..result import Result
from .feeds import HttpFeed, MirrorFeed
from .sources import Limits
from .state import State, default_path


def _feeds(sources: Sequence[str], limits: Limits) -> list[HttpFeed | MirrorFeed]:
    feeds: list[HttpFeed | MirrorFeed] = []
    for source in sources:
        if source.startswith(("http://", "https://")):
            feeds.append(HttpFeed(source, limits))
        elif Path(source).is_dir():
            feed = MirrorFeed(Path(source).resolve(), limits)
            feed.epochs()  # a directory that is no mirror is named now (exit 2)
            feeds.append(feed)
        else:
            raise UsageError(f"--source {source}: neither an http(s) URL of a public-inbox nor "
                             "a directory (a public-inbox v2 mirror)")
    return feeds


def _logging(args: argparse.Namespace) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%Y-%m-%dT%H:%M:%S"))
    logger = logging.getLogger("xenpatch.watch")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if args.quiet else
                    logging.DEBUG if args.verbose else logging.INFO)
    logger.propagate = False
    return handler


class _BotRecord:
    """The watch state as a ``mail.send.SendRecord``: intent before SMTP, sent after."""

    def __init__(self, watcher: Any) -> None:
        self.watcher = watcher

    def before(self, pending: Sequence[Any]) -> None:
        self.watcher.before_send([o.message_id for o in pending])

    def accepted(self, out: Any) -> None:
        self.watcher.sent(out.message_id)


def _mailer(config: Config, git_config: dict[str, str], sender: str) -> Any:
    def mail(todo: Sequence[tuple[str, Any]], watcher: Any) -> int:
        import os

        from ..mail import send as sending
        from ..mail import smtp
        outs = [sending.outgoing(mid, msg) for mid, msg in todo]
        settings = smtp.settings_from(config, git_config, os.environ)
        return sending.deliver(sending.plan_messages(sender, outs), settings, _BotRecord(watcher))
    return mail


def watch(args: argparse.Namespace, config: Config) -> Result:
    from .. import gitrepo, identity
    from .watch import Watcher, WatchOptions
    if not args.source:
        raise UsageError("watch: give at least one --source URL_OR_DIR")
    if args.interval is not None and args.interval <= 0:
        raise UsageError(f"--interval {args.interval}: must be more than 0 seconds")
    limits = Limits.from_config(config)
    feeds = _feeds(args.source, limits)
    tree = xentree.resolve(config)
    repo = gitrepo.open_repo(tree)
    if args.base:
        gitrepo.resolve(repo, args.base)  # an unknown --base is named now (exit 2)
    out = Path(args.out or "xenpatch-watch").resolve()
    git_config = gitrepo.config_values(tree)
    sender = identity.mail_from(config, git_config)
    if args.send:
        import os

        from ..mail import smtp
        smtp.settings_from(config, git_config, os.environ)  # no SMTP server: exit 2 now
    state = State(Path(args.state).resolve() if args.state else default_path())
    stop = threading.Event()
    handler = _logging(args)
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    progress = ((lambda line: print(line, file=sys.stderr, flush=True))
                if sys.stderr.isatty() and not args.quiet else None)
    opts = WatchOptions(out, tree, args.base, float(args.wait), bool(args.send))
    watcher = Watcher(state, feeds, opts, config, sender=lambda: sender,
                      mailer=_mailer(config, git_config, sender) if args.send else None,
                      stop=stop.is_set, progress=progress)
    log = logging.getLogger("xenpatch.watch")
    try:
        while True:
            started = time.monotonic()
            report = watcher.run_pass()
            log.info("pass done: %d new messages, %d skipped, %d reviewed, %d replies sent%s "
                     "in %.3f s", report.new_messages, report.skipped, len(report.reviewed),
                     report.replies_sent, f", {len(report.down)} feed failures"
                     if report.down else "", time.monotonic() - started)
            if args.once:
                return Result(report.exit_code)
            # The ABI engine freezes what its dumps leave alive (abi/c/fast.py,
            # collector_paused); between passes the collector may walk it again, so
            # that a long watch does not keep what became cyclic garbage since.
            gc.unfreeze()
            if stop.wait(args.interval or 300):
                log.info("SIGTERM: stopped after the current review")
                return Result(0)
    finally:
        signal.signal(signal.SIGTERM, previous)
        logging.getLogger("xenpatch.watch").removeHandler(handler)
        state.close()


def claims(args: argparse.Namespace, config: Config) -> Result:
    """``xenpatch claims``: the open cross-series claims in the watch state."""
    del config
    path = Path(args.state).resolve() if args.state else default_path()
    state = State(path, readonly=True)
    try:
        found = state.open_claims()
    finally:
        state.close()
    if args.format == "json":
        return Result.of_json({"schema": "xenpatch-claims/1", "state": str(path), "claims": [
            {**o.claim.to_json(), "series": {"subject": o.holder.subject,
                                             "version": o.holder.version,
                                             "message_id": o.holder.message_id}}
            for o in found]})
    if not found:
        return Result(text=f"no open claims in {path}\n")
    lines: list[str] = []
    holder = None
    for o in found:
        if o.holder != holder:
            holder = o.holder
            lines.append(f"{o.holder.label}:")
        lines.append(f"  {o.claim.what:<40} {o.claim.name}  ({o.claim.header}:{o.claim.line})")
    return Result(text="\n".join(lines) + "\n")
