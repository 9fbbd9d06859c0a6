"""Where the watch bot reads list traffic: a public-inbox over HTTP, and public-inbox v2 git mirrors.

* ``HttpFeed``: ``<inbox>/new.atom`` (public-inbox's feed of the newest
  messages, newest first; public-inbox's WWW shows the latest 25 or so, so a
  bot that is down longer than that window sees the rest through the
  threads it does fetch), then ``<inbox>/<Message-ID>/t.mbox.gz`` for each
  new message's thread.  Timeouts, bounded retries with backoff on 5xx and
  connection errors; an archive that still fails is ``ArchiveDown`` (exit 3),
  never "no new mail".
* ``MirrorFeed``: a v2 mirror (``git/0.git``, ``git/1.git``, ... epochs, or a
  ``git clone --mirror`` of one epoch): the commits after the last one seen,
  epoch by epoch, each commit one message in its blob ``m``
  (public-inbox-v2-format(5)); ``git fetch`` first when the mirror has a
  remote.
"""

from __future__ import annotations

import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__, gitrepo
from ..errors import EnvironmentFailure, InputError
from .series import Mail
from .sources import Limits, mails_from_bytes

USER_AGENT = f"xenpatch/{__version__} (watch; +https://xenbits.xen.org/)"
MAX_ATOM_BYTES = 4 * 1024 * 1024
ATOM = "{http://www.w3.org/2005/Atom}"


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
    """A public-inbox archive over HTTP (``requests``)."""

    def __init__(self, url: str, limits: Limits, *, sleep: Callable[[float], None] = time.sleep,
                 backoff: float = 0.5) -> None:
        import requests
        self.url = url.rstrip("/") + "/"
        self.name = self.url
        self.limits = limits
        self.sleep, self.backoff = sleep, backoff
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def _get(self, url: str, cap: int, decode: bool = True) -> tuple[int, bytes]:
        """(status, body) of URL, the body at most CAP bytes (InputError beyond); DECODE
        undoes a ``Content-Encoding`` (a ``t.mbox.gz`` is kept compressed: the mbox
        reader inflates it within its own bound)."""
        import requests
        last = ""
        for attempt in range(self.limits.http_retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                with self.session.get(url, timeout=self.limits.http_timeout, stream=True) as r:
                    if r.status_code >= 500:
                        last = f"HTTP {r.status_code}"
                        continue
                    body = bytearray()
                    for chunk in r.raw.stream(65536, decode_content=decode):
                        body += chunk
                        if len(body) > cap:
                            raise InputError(f"{url}: larger than {cap} bytes")
                    return r.status_code, bytes(body)
            except (requests.ConnectionError, requests.Timeout) as e:
                last = "cannot connect" if isinstance(e, requests.ConnectionError) else "timed out"
            except requests.RequestException as e:
                last = type(e).__name__
        raise ArchiveDown(f"{self.url}: {last} (after {self.limits.http_retries + 1} tries)")

    def poll(self) -> list[str]:
        """The Message-IDs in ``new.atom``, oldest first."""
        status, body = self._get(self.url + "new.atom", MAX_ATOM_BYTES)
        if status != 200:
            raise ArchiveDown(f"{self.url}new.atom: HTTP {status}")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            raise ArchiveDown(f"{self.url}new.atom: not an Atom feed ({e})") from e
        ids: list[str] = []
        for entry in root.iter(f"{ATOM}entry"):
            for link in entry.iter(f"{ATOM}link"):
                mid = self._message_id(link.get("href", ""))
                if mid:
                    ids.append(mid)
                    break
        return list(reversed(ids))

    def _message_id(self, href: str) -> str | None:
        path = urllib.parse.urlsplit(href).path
        base = urllib.parse.urlsplit(self.url).path
        if not path.startswith(base):
            return None
        part = path[len(base):].strip("/").split("/")[0]
        mid = urllib.parse.unquote(part)
        return mid if "@" in mid else None

    def thread(self, message_id: str) -> list[Mail]:
        """The mails of MESSAGE_ID's thread; InputError for a thread the archive does not
        have or that is malformed or too big (one line naming it)."""
        quoted = urllib.parse.quote(message_id, safe="@!$&'()*+,;=:")
        cap = self.limits.max_decompressed_bytes
        status, body = self._get(f"{self.url}{quoted}/t.mbox.gz", cap, decode=False)
        if status == 404:
            raise InputError(f"<{message_id}>: not in {self.url} (HTTP 404)")
        if status != 200:
            raise InputError(f"<{message_id}>: {self.url} answered HTTP {status}")
        return mails_from_bytes(body, f"<{message_id}>", self.limits)

    def has(self, message_id: str) -> bool:
        """Whether the archive holds MESSAGE_ID (a reply the bot sent reached the list)."""
        quoted = urllib.parse.quote(message_id, safe="@!$&'()*+,;=:")
        status, _ = self._get(f"{self.url}{quoted}/raw", self.limits.max_message_bytes * 2)
        return status == 200


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
