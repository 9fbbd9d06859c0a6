"""Where the watch bot reads list traffic: a public-inbox over HTTP, and public-inbox v2 git mirrors.

* ``HttpFeed``: ``<inbox>/new.atom`` (public-inbox's feed of the newest
  messages, newest first; public-inbox's WWW shows the latest 25 or so, so a
  bot that is down longer than that window sees the rest through the
  threads it does fetch), then ``<inbox>/<Message-ID>/t.mbox.gz`` for each
  new message's thread (``mail.archive``: timeouts, bounded retries with
  backoff on 5xx and connection errors); an archive that still fails is
  ``ArchiveDown`` (exit 3), never "no new mail".
* ``MirrorFeed``: a v2 mirror (``git/0.git``, ``git/1.git``, ... epochs, or a
  ``git clone --mirror`` of one epoch): the commits after the last one seen,
  epoch by epoch, each commit one message in its blob ``m``
  (public-inbox-v2-format(5)); ``git fetch`` first when the mirror has a
  remote.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import gitrepo
from ..errors import EnvironmentFailure, InputError
from .series import Mail
from .sources import Limits, mails_from_bytes


class ArchiveDown(EnvironmentFailure):
    """An archive or mirror that cannot be read now (retried, then reported; exit 3)."""


@dataclass(frozen=True)
class MirrorMessage:
    """One commit of an epoch: where it is, and the size of its message."""

    epoch: str  # the epoch's directory
    sha: str
    size: int

    @property
    def locator(self) -> str:
        return f"{self.epoch}|{self.sha}"


class HttpFeed:
    """A public-inbox archive over HTTP, through ``mail.archive`` (requests)."""

    def __init__(self, url: str, limits: Limits, *, backoff: float = 0.5) -> None:
        from ..mail import archive
        self.archive = archive
        self.url = url.rstrip("/") + "/"
        self.name = self.url
        self.limits = limits
        self.how = archive.Fetch(timeout=float(limits.http_timeout), retries=limits.http_retries,
                                 max_bytes=limits.max_decompressed_bytes, backoff=backoff)

    def poll(self) -> list[str]:
        """The Message-IDs in ``new.atom``, oldest first."""
        try:
            entries = self.archive.new_atom(self.url, self.how)
        except (EnvironmentFailure, InputError) as e:
            raise ArchiveDown(str(e)) from e
        return [e.message_id for e in reversed(entries)]

    def thread(self, message_id: str) -> list[Mail]:
        """The mails of MESSAGE_ID's thread; InputError for a thread the archive does not
        have or that is malformed or too big (one line naming it); ArchiveDown when the
        archive cannot be reached."""
        try:
            data = self.archive.fetch_thread(self.url, message_id, self.how)
        except InputError:
            raise
        except EnvironmentFailure as e:
            raise ArchiveDown(str(e)) from e
        return mails_from_bytes(data, f"<{message_id}>", self.limits)

    def has(self, message_id: str) -> bool:
        """Whether the archive holds MESSAGE_ID (a reply the bot sent reached the list)."""
        try:
            self.archive.fetch_thread(self.url, message_id, self.how)
        except InputError:
            return False
        except EnvironmentFailure as e:
            raise ArchiveDown(str(e)) from e
        return True


_EPOCH = re.compile(r"^(\d+)\.git$")


class MirrorFeed:
    """A public-inbox v2 git mirror on disk (read through ``gitrepo``)."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path = path
        self.name = str(path)
        self.limits = limits

    def epochs(self) -> list[Path]:
        git_dir = self.path / "git"
        if git_dir.is_dir():
            found = sorted((int(m.group(1)), p) for p in git_dir.iterdir()
                           if (m := _EPOCH.match(p.name)) and p.is_dir())
            if found:
                return [p for _, p in found]
        if (self.path / "objects").is_dir() or (self.path / ".git").exists():
            return [self.path]  # one epoch's clone
        raise InputError(f"--source {self.path}: not a public-inbox v2 mirror (no git/N.git "
                         "epochs) and not a clone of one epoch")

    def fetch(self) -> None:
        """``git fetch`` in every epoch that has a remote (a mirror of a remote inbox)."""
        for epoch in self.epochs():
            try:
                gitrepo.fetch_remote(epoch)
            except EnvironmentFailure as e:
                raise ArchiveDown(f"{epoch}: {e}") from e

    def new_messages(self, cursor: Callable[[str], str | None], limit: int) -> list[MirrorMessage]:
        """Messages after each epoch's cursor (CURSOR maps an epoch to its last commit)."""
        out: list[MirrorMessage] = []
        for epoch in self.epochs():
            try:
                commits = gitrepo.new_commits(epoch, cursor(str(epoch)), limit - len(out))
            except (EnvironmentFailure, InputError) as e:
                raise ArchiveDown(f"{epoch}: {e}") from e
            out += [MirrorMessage(str(epoch), sha, size) for sha, size in commits]
            if len(out) >= limit:
                break
        return out

    def read(self, locator: str) -> bytes:
        epoch, _, sha = locator.partition("|")
        return gitrepo.read_message(Path(epoch), sha)

    def has(self, message_id: str) -> bool:
        del message_id
        return False  # the bot records every mirror message it reads (State.unseen)


def describe(feed: Any) -> str:
    return getattr(feed, "name", str(feed))
