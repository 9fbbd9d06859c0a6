"""The watch bot: read new list traffic, review each new series version once, write and send the replies.

A pass (``Watcher.run_pass``):

1. every feed is read for new messages; each thread with patches yields its
   series versions (a ``vN`` is a new version, a RESEND of a known version
   is not), recorded ``pending`` in the same transaction that marks the
   messages seen (``state.py`` says why that order is crash-safe);
2. each pending version is reviewed when all its ``m/n`` are there, or
   after ``wait`` seconds as incomplete (``series-incomplete``); outputs are
   written, then the review is recorded in one transaction;
3. with ``send``, the queued replies are mailed once (``state.py``).

A malformed or oversized message is one log line and is skipped; a feed
that is down is logged, counted, retried next pass and never taken for "no
new mail"; a failure of git or cpp during a review leaves the version
pending and is never reported as a finding against the patch.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import atomic
from ..config import Config
from ..errors import EnvironmentFailure, InputError
from . import claims as cl
from .feeds import ArchiveDown, HttpFeed, MirrorFeed
from .finding import Finding, ordered
from .series import Mail, Series, assemble, parse_mail
from .sources import Limits
from .state import SeriesRow, State

if TYPE_CHECKING:  # engine is imported when a review runs, not at start-up
    from .engine import Review

log = logging.getLogger("xenpatch.watch")
MAX_PER_PASS = 100_000  # mirror commits read in one pass


@dataclass(frozen=True)
class WatchOptions:
    out: Path
    tree: Path
    base: str | None  # --base; None: the series' base-commit:, else [tree].base
    wait: float = 3600.0  # seconds an incomplete series waits for its missing patches
    send: bool = False


@dataclass
class PassReport:
    """What one pass did (the ``--once`` exit code comes from it)."""

    new_messages: int = 0
    skipped: int = 0
    reviewed: list[tuple[str, int, dict[str, int], float]] = field(default_factory=list)
    with_errors: int = 0
    down: list[str] = field(default_factory=list)
    infra: list[str] = field(default_factory=list)
    replies_sent: int = 0

    @property
    def exit_code(self) -> int:
        """3 when a feed, git, cpp or SMTP failed (the pass is incomplete); else 1 when a
        review this pass has an error-level finding; else 0 (DESIGN.md exit codes)."""
        if self.down or self.infra:
            return 3
        return 1 if self.with_errors else 0


def crash_point(name: str, _counts: dict[str, int] = {}) -> None:  # noqa: B006
    """Fault injection for the restart-safety test: ``XENPATCH_TEST_CRASH=NAME[:N]``
    SIGKILLs this process the Nth time it reaches NAME.  Unset, it does nothing."""
    spec = os.environ.get("XENPATCH_TEST_CRASH")
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def series_key(series: Series) -> str:
    """What stays the same across versions: the author's address and the summary."""
    first = series.cover or series.patches[0].mail
    from email.utils import parseaddr
    who = parseaddr(first.sender)[1].lower() or first.sender.lower()
    return f"{who}\0{' '.join(series.subject.lower().split())}"


def thread_root(mail: Mail) -> str:
    return mail.references[0] if mail.references else (mail.in_reply_to or mail.message_id)


def series_digest(series: Series, base: str) -> str:
    """What a review reviews: the version, the patches' bytes and the base (outputs with
    this digest are this review's, whoever wrote them)."""
    import hashlib
    h = hashlib.sha256(f"v{series.version}\0{base}\0".encode())
    for p in series.patches:
        h.update(p.mail.raw)
        h.update(b"\0")
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        atomic.write(path, data)
    except OSError as e:
        raise InputError(f"--out {path.parent}: cannot write {path.name}: {e.strerror}") from e


class Watcher:
    """The bot over FEEDS with one STATE; STOP is asked between reviews (SIGTERM sets it)."""

    def __init__(self, state: State, feeds: Sequence[HttpFeed | MirrorFeed], options: WatchOptions,
                 config: Config, *, sender: Callable[[], str],
                 mailer: Callable[[Sequence[Any], Any], int] | None = None,
                 stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[str], None] | None = None) -> None:
        self.state, self.feeds, self.opts, self.config = state, list(feeds), options, config
        self.sender, self.mailer, self.stop, self.progress = sender, mailer, stop, progress
        self.limits = Limits.from_config(config)
        self._threads: dict[tuple[str, str], list[Mail]] = {}

    # --- 1. new messages -------------------------------------------------------------

    def run_pass(self) -> PassReport:
        report = PassReport()
        self._threads = {}
        for feed in self.feeds:
            try:
                if isinstance(feed, HttpFeed):
                    self._collect_http(feed, report)
                else:
                    self._collect_mirror(feed, report)
            except ArchiveDown as e:
                log.error("archive down: %s; retried next pass, nothing taken as read", e)
                report.down.append(str(e))
            if self.stop():
                return report
        self._review_pending(report)
        if self.opts.send and not self.stop():
            self._send(report)
        return report

    def _collect_http(self, feed: HttpFeed, report: PassReport) -> None:
        new = self.state.unseen(feed.poll())
        for mid in new:
            if self.stop():
                return
            if not self.state.unseen([mid]):
                continue  # came with an earlier thread of this pass
            try:
                mails = feed.thread(mid)
            except InputError as e:
                self._skip(feed.name, mid, str(e), report)
                continue
            report.new_messages += 1
            self._take_thread(feed.name, mid, mails, [(m.message_id, mid) for m in mails]
                              + [(mid, mid)])

    def _collect_mirror(self, feed: MirrorFeed, report: PassReport) -> None:
        feed.fetch()
        cursors: dict[str, str] = {}
        groups: dict[str, list[tuple[Mail, str]]] = {}
        for msg in feed.new_messages(lambda e: self.state.cursor(f"{feed.name}#{e}"),
                                     MAX_PER_PASS):
            cursors[msg.epoch] = msg.sha
            if msg.size > self.limits.max_message_bytes:
                self._skip(feed.name, f"{msg.sha}@{Path(msg.epoch).name}",
                           f"commit {msg.sha[:12]} of {msg.epoch}: message of {msg.size} bytes, "
                           f"larger than {self.limits.max_message_bytes} "
                           "([review].max_message_bytes)", report)
                continue
            try:
                mail = parse_mail(feed.read(msg.locator))
            except InputError as e:
                self._skip(feed.name, f"{msg.sha}@{Path(msg.epoch).name}",
                           f"commit {msg.sha[:12]} of {msg.epoch}: {e}", report)
                continue
            report.new_messages += 1
            groups.setdefault(thread_root(mail), []).append((mail, msg.locator))
        for root, items in groups.items():
            known = [parse_mail(feed.read(loc)) for loc in
                     self.state.thread_locators(feed.name, root) if loc]
            fresh = {m.message_id for m, _ in items}
            mails = [m for m in known if m.message_id not in fresh] + [m for m, _ in items]
            self._take_thread(feed.name, root, mails,
                              [(m.message_id, loc) for m, loc in items])
        if cursors:
            with self.state.transaction() as db:
                for epoch, sha in cursors.items():
                    self.state.set_cursor(db, f"{feed.name}#{epoch}", sha)

    def _skip(self, source: str, mid: str, why: str, report: PassReport) -> None:
        log.warning("skipped %s", why)
        report.skipped += 1
        with self.state.transaction() as db:
            self.state.mark_seen(db, mid, source, mid, "", f"skipped: {why}"[:500])

    def _take_thread(self, source: str, root: str, mails: list[Mail],
                     seen: list[tuple[str, str]]) -> None:
        """Record THREAD's series versions as pending and its new messages as seen, at once."""
        self._threads[(source, root)] = mails
        versions: list[Series] = []
        try:
            first = assemble(mails, max_patches=self.limits.max_patches)
            versions = [first] + [assemble(mails, version=v, max_patches=self.limits.max_patches)
                                  for v in first.versions if v != first.version]
        except InputError as e:
            subject = next((m.subject for m in mails if m.message_id == root), mails[0].subject)
            log.info("not reviewed: <%s> %r: %s", root, subject[:80], e)
        with self.state.transaction() as db:
            for s in versions:
                if not s.patches:
                    continue
                key = series_key(s)
                if self.state.series(key, s.version) is None:
                    first_mail = s.cover or s.patches[0].mail
                    self.state.add_pending(db, key=key, version=s.version,
                                           message_id=s.message_id, subject=s.subject,
                                           author=first_mail.sender, source=source, root=root,
                                           total=s.total)
                    log.info("new series: %r v%d (%d/%d patches) <%s>", s.subject[:70],
                             s.version, len(s.patches), s.total, s.message_id)
            for mid, locator in seen:
                self.state.mark_seen(db, mid, source, root, locator, "read")

    # --- 2. reviews ------------------------------------------------------------------

    def _thread(self, row: SeriesRow) -> list[Mail] | None:
        cached = self._threads.get((row.source, row.root))
        if cached is not None:
            return cached
        feed = next((f for f in self.feeds if f.name == row.source), None)
        if feed is None:
            return None  # a source not watched this run: left pending
        if isinstance(feed, HttpFeed):
            return feed.thread(row.root)
        return [parse_mail(feed.read(loc)) for loc in
                self.state.thread_locators(feed.name, row.root) if loc]

    def _review_pending(self, report: PassReport) -> None:
        rows = self.state.pending()
        for i, row in enumerate(rows, 1):
            if self.stop():
                log.info("stopping: %d series left pending", len(rows) - i + 1)
                return
            try:
                mails = self._thread(row)
            except ArchiveDown as e:
                report.down.append(str(e))
                log.error("archive down: %s; v%d of %r stays pending", e, row.version,
                          row.subject[:60])
                continue
            except InputError as e:
                log.warning("series %r v%d: its thread cannot be read now (%s)",
                            row.subject[:60], row.version, e)
                continue
            if mails is None:
                continue
            try:
                series = assemble(mails, version=row.version, max_patches=self.limits.max_patches)
            except InputError as e:
                self._not_reviewable(row, str(e))
                continue
            waited = time.time() - row.first_seen
            if series.missing and waited < self.opts.wait:
                log.debug("waiting for patches %s of %r v%d (%.0f s of %.0f s)",
                          list(series.missing), row.subject[:60], row.version, waited,
                          self.opts.wait)
                continue
            if self.progress:
                self.progress(f"[{i}/{len(rows)}] reviewing {row.subject[:60]!r} v{row.version}")
            self._review_one(row, series, report)

    def _settings(self) -> Any:
        from . import engine
        cache = self.config.get("abi", "cache")
        return engine.Settings(arches=tuple(self.config.get("abi", "arches")),
                               cpp=self.config.get("abi", "cpp"),
                               cache_dir=self.config.resolve_path(cache) if cache else None,
                               jobs=self.config.get("abi", "jobs"), suppress=self.config.suppress,
                               configured_base=self.config.get("tree", "base"))

    def _review_one(self, row: SeriesRow, series: Series, report: PassReport) -> None:
        from .. import gitrepo
        from . import apply
        started = time.monotonic()
        json_path = self._outputs(row)
        try:
            base = apply.choose_base(gitrepo.open_repo(self.opts.tree), self.opts.base, series,
                                     self.config.get("tree", "base"))
            digest = series_digest(series, base.sha)
            doc = self._adopt(json_path, digest)
            if doc is None:
                doc = self._review_and_write(row, series, base, digest, json_path)
        except EnvironmentFailure as e:
            log.error("review of %r v%d not done (infrastructure, not the patch's fault): %s; "
                      "retried next pass", row.subject[:60], row.version, e)
            report.infra.append(str(e))
            return
        except InputError as e:  # the series itself (a limit, a base it names): not retried
            self._not_reviewable(row, str(e))
            return
        claims = [cl.Claim(**c) for c in doc.get("claims", [])]
        replies = [(r["message_id"], str(self.opts.out / r["file"])) for r in doc["replies"]]
        counts = doc["summary"]
        self.state.record_review(row.id, digest, {"counts": counts, "json": str(json_path)},
                                 claims, replies)
        crash_point("after-commit")
        seconds = time.monotonic() - started
        report.reviewed.append((row.subject, row.version, counts, seconds))
        report.with_errors += bool(counts["error"])
        log.info("reviewed %r v%d: %d error(s), %d warning(s), %d info (%.1f s) -> %s",
                 row.subject[:70], row.version, counts["error"], counts["warning"],
                 counts["info"], seconds, json_path.name)

    def _not_reviewable(self, row: SeriesRow, why: str) -> None:
        """Record a version that cannot be reviewed (its own input is at fault) so that it is
        not tried again; one log line, no output, no reply."""
        log.warning("not reviewable: %r v%d <%s>: %s", row.subject[:60], row.version,
                    row.message_id, why)
        self.state.record_review(row.id, "", {"input_error": why[:500],
                                              "counts": {"error": 0, "warning": 0, "info": 0}},
                                 [], [])

    def _outputs(self, row: SeriesRow) -> Path:
        import hashlib
        stem = f"{hashlib.sha256(row.key.encode()).hexdigest()[:12]}-v{row.version}"
        return self.opts.out / f"{stem}.json"

    def _adopt(self, json_path: Path, digest: str) -> dict[str, Any] | None:
        """The outputs of a review killed before its commit, when they are of this input."""
        try:
            doc = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("input_digest") != digest:
            return None
        log.info("found the outputs of an unrecorded review of this input: %s", json_path.name)
        return doc

    def _claim_findings(self, row: SeriesRow, review: Review) -> tuple[
            tuple[cl.Claim, ...], list[Finding]]:
        """This version's claims, made of the ABI diff REVIEW found (``engine.Review.abi``),
        and a cross-series-claim warning for each one another open series holds; claims
        whose names are in the base now end first."""
        diff = review.abi
        if diff is None:  # no public header touched, or not every patch applied
            return (), []
        self.state.end_merged(cl.merged_names(diff.base), review.base.sha)
        claims = cl.derive(diff.changes, diff.result)
        others = [(o.claim, o.holder) for o in self.state.open_claims() if o.key != row.key]
        return claims, [Finding("cross-series-claim", "warning",
                                _patch_of(c.claim.header, review.series),
                                f"xen/include/public/{c.claim.header}", c.claim.line, c.message)
                        for c in cl.conflicts(claims, others)]

    def _review_and_write(self, row: SeriesRow, series: Series, base: Any, digest: str,
                          json_path: Path) -> dict[str, Any]:
        import dataclasses
        from email.utils import format_datetime, parseaddr

        from . import engine, report
        crash_point("before-review")
        log.info("reviewing %r v%d on %s (%s)", row.subject[:70], row.version, base.sha[:12],
                 base.reason)
        r = engine.review(series, self.opts.tree, self.opts.base, self._settings())
        claims, extra = self._claim_findings(row, r)
        r = dataclasses.replace(r, findings=ordered((*r.findings, *extra)))
        doc = report.review_json(r)
        doc.update(input_digest=digest, claims=[c.to_json() for c in claims], replies=[])
        sender = self.sender()
        archive = next((f.name for f in self.feeds if isinstance(f, HttpFeed)),
                       self.config.get("list", "archive"))
        command = (f"xenpatch review '<{series.message_id}>' --archive {archive} "
                   f"--base {r.base.sha} --version {series.version}")
        rs = report.ReplySettings(sender=sender, date=format_datetime(datetime.now(UTC)),
                                  list_address=self.config.get("list", "address"),
                                  command=command,
                                  domain=parseaddr(sender)[1].rpartition("@")[2]
                                  or "xenpatch.invalid")
        self.opts.out.mkdir(parents=True, exist_ok=True)
        crash_point("before-outputs")
        for i, out in enumerate(report.replies(r, rs), 1):
            eml = json_path.with_name(f"{json_path.stem}-{i}.eml")
            _atomic_write(eml, out.message.as_bytes())
            doc["replies"].append({"message_id": out.message_id, "file": eml.name})
        # The JSON last: its presence with this digest is what a restart adopts.
        _atomic_write(json_path, (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode())
        crash_point("after-outputs")
        return doc

    # --- 3. replies ------------------------------------------------------------------

    def _send(self, report: PassReport) -> None:
        rows = self.state.replies(("queued", "sending"))
        todo = []
        for r in rows:
            if r.status == "sending" and self._reached_list(r.message_id):
                log.info("reply %s is in the archive: recorded as sent", r.message_id)
                self.state.mark_reply(r.message_id, "sent")
                continue
            try:
                data = Path(r.path).read_bytes()
            except OSError as e:
                log.error("reply %s: cannot read %s (%s)", r.message_id, r.path, e.strerror)
                continue
            todo.append((r.message_id, BytesParser(policy=policy.default).parsebytes(data)))
        if not todo or self.mailer is None:
            return
        try:
            report.replies_sent += self.mailer(todo, self)
        except EnvironmentFailure as e:
            log.error("sending replies failed: %s; retried next pass", e)
            report.infra.append(str(e))

    def _reached_list(self, message_id: str) -> bool:
        if not self.state.unseen([message_id.strip("<>")]):
            return True
        for feed in self.feeds:
            try:
                if feed.has(message_id.strip("<>")):
                    return True
            except (ArchiveDown, InputError):
                continue
        return False

    def before_send(self, message_ids: Sequence[str]) -> None:
        for mid in message_ids:
            self.state.mark_reply(mid, "sending")
        crash_point("reply-intent")

    def sent(self, message_id: str) -> None:
        crash_point("reply-accepted")
        self.state.mark_reply(message_id, "sent")
        log.info("sent reply %s", message_id)


def _patch_of(header: str, series: Series) -> int | None:
    """The last patch of SERIES touching public HEADER (the one whose lines the result shows)."""
    path = f"xen/include/public/{header}"
    return next((p.number for p in reversed(series.patches) if path in p.files), None)
