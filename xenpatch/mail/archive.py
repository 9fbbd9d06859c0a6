"""A public-inbox archive over HTTP (lore and the like): threads by Message-ID, new.atom."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import requests
import urllib3

from .. import __version__
from ..errors import EnvironmentFailure, InputError
from ..review.mbox import GZIP_MAGIC, gunzip

USER_AGENT = f"xenpatch/{__version__}"
# public-inbox escapes these in the Message-ID part of a URL (PublicInbox::MID, mid_escape()).
_MID_SAFE = "-._~!$&'()*+,;=:@"
_ATOM = "{http://www.w3.org/2005/Atom}"
_THR = "{http://purl.org/syndication/thread/1.0}"


@dataclass(frozen=True)
class Fetch:
    """How to talk to an archive: per-request timeout (seconds), retries after a 5xx
    or a connection error, and the most bytes a response may inflate to."""

    timeout: float = 30.0
    retries: int = 3
    max_bytes: int = 64 * 1024 * 1024
    backoff: float = 0.5  # seconds before the first retry; doubled each time


@dataclass(frozen=True)
class AtomEntry:
    """One message of an archive's new.atom feed."""

    message_id: str
    updated: str  # as the feed says it (RFC 3339)
    title: str
    in_reply_to: str | None  # the parent's Message-ID, when the feed names it


def message_url(base: str, message_id: str) -> str:
    """``BASE/<msgid>/``, the Message-ID escaped as public-inbox does."""
    return f"{base.rstrip('/')}/{quote(message_id.strip().strip('<>'), safe=_MID_SAFE)}/"


def split_thread_url(url: str) -> tuple[str, str]:
    """(archive base, Message-ID) of a thread or message URL of a public-inbox archive:
    ``https://host/list/<msgid>/``, ``.../T/``, ``.../t/``, ``.../t.mbox.gz``, ``.../raw``."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    for i in range(len(segments) - 1, -1, -1):
        if "@" in unquote(segments[i]):
            base = f"{parts.scheme}://{parts.netloc}/{'/'.join(segments[:i])}"
            return base.rstrip("/") + "/", unquote(segments[i])
    raise InputError(f"{url}: not a message or thread URL of a public-inbox archive "
                     "(no Message-ID in its path)")


def fetch_thread(base: str, message_id: str, how: Fetch = Fetch()) -> bytes:
    """The thread of MESSAGE_ID in the archive at BASE as mbox bytes: ``t.mbox.gz``
    (a gzip body, or a ``Content-Encoding: gzip`` response, or both), else the
    message alone from ``raw``.  InputError when the archive has no such message,
    EnvironmentFailure when it cannot be reached."""
    root = message_url(base, message_id)
    with requests.Session() as session:
        status, body, encoding = _get(session, root + "t.mbox.gz", how)
        if status == 404:
            status, body, encoding = _get(session, root + "raw", how)
            if status == 404:
                raise InputError(f"{base}: the archive has no message <{message_id.strip('<>')}> "
                                 f"(HTTP 404 for {root}raw)")
            url = root + "raw"
        else:
            url = root + "t.mbox.gz"
    if status != 200:
        raise EnvironmentFailure(f"archive {url}: HTTP {status}")
    return _decode(body, encoding, url, how.max_bytes)


def new_atom(base: str, how: Fetch = Fetch()) -> list[AtomEntry]:
    """The entries of ``BASE/new.atom`` (the newest messages), in feed order."""
    url = base.rstrip("/") + "/new.atom"
    with requests.Session() as session:
        status, body, encoding = _get(session, url, how)
    if status != 200:
        raise EnvironmentFailure(f"archive {url}: HTTP {status}")
    return parse_atom(_decode(body, encoding, url, how.max_bytes), url)


def parse_atom(data: bytes, name: str) -> list[AtomEntry]:
    """The entries of a public-inbox Atom feed; the Message-ID is the last path part
    of an entry's link (public-inbox links ``BASE/<msgid>/``)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # no entity expansion from a feed
        raise InputError(f"{name}: the feed declares a DOCTYPE or entities; refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise InputError(f"{name}: not an Atom feed ({e})") from e
    entries = []
    for entry in root.iter(f"{_ATOM}entry"):
        link = entry.find(f"{_ATOM}link")
        href = link.get("href", "") if link is not None else ""
        try:
            _, mid = split_thread_url(href)
        except InputError:
            continue
        parent = entry.find(f"{_THR}in-reply-to")
        in_reply_to = None
        if parent is not None and parent.get("href"):
            try:
                in_reply_to = split_thread_url(parent.get("href", ""))[1]
            except InputError:
                in_reply_to = None
        entries.append(AtomEntry(mid, (entry.findtext(f"{_ATOM}updated") or "").strip(),
                                 " ".join((entry.findtext(f"{_ATOM}title") or "").split()),
                                 in_reply_to))
    return entries


def _get(session: requests.Session, url: str, how: Fetch) -> tuple[int, bytes, str]:
    """(status, body as sent, Content-Encoding) of GET URL, retrying 5xx answers and
    connection errors HOW.retries times with a doubling pause."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"}
    attempt = 0
    while True:
        problem = ""
        try:
            with session.get(url, headers=headers, timeout=how.timeout, stream=True,
                             allow_redirects=True) as resp:
                if resp.status_code < 500:
                    body = _read_capped(resp, url, how) if resp.status_code == 200 else b""
                    return resp.status_code, body, resp.headers.get("Content-Encoding", "")
                problem = f"HTTP {resp.status_code}"
        except requests.exceptions.InvalidURL as e:
            raise InputError(f"{url}: not a valid URL ({e})") from e
        except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as e:
            raise InputError(f"{url}: not an http(s) URL") from e
        except (requests.ConnectionError, requests.Timeout) as e:
            problem = _reason(e)
        except urllib3.exceptions.HTTPError as e:  # from reading the body ourselves
            problem = "read timed out" if isinstance(e, urllib3.exceptions.TimeoutError) \
                else "connection broken while reading the answer"
        except requests.RequestException as e:
            raise EnvironmentFailure(f"archive {url}: {_reason(e)}") from e
        if attempt >= how.retries:
            tries = f" after {attempt + 1} tries" if attempt else ""
            raise EnvironmentFailure(f"archive {url}: {problem}{tries}")
        time.sleep(how.backoff * (2 ** attempt))
        attempt += 1


def _read_capped(resp: requests.Response, url: str, how: Fetch) -> bytes:
    """The body as sent (not inflated by urllib3), at most HOW.max_bytes, read within
    four timeouts in all (a server that trickles bytes does not hold us forever)."""
    out = bytearray()
    deadline = time.monotonic() + 4 * how.timeout
    while chunk := resp.raw.read(65536, decode_content=False):
        out += chunk
        if len(out) > how.max_bytes:
            raise InputError(f"{url}: the response is larger than {how.max_bytes} bytes "
                             "([review].max_decompressed_bytes)")
        if time.monotonic() > deadline:
            raise EnvironmentFailure(f"archive {url}: the response took longer than "
                                     f"{4 * how.timeout:g} s")
    return bytes(out)


def _decode(body: bytes, encoding: str, url: str, limit: int) -> bytes:
    """BODY inflated: once for ``Content-Encoding: gzip``, once more when what is left is
    itself a gzip file (public-inbox sends t.mbox.gz as an application/gzip body)."""
    if encoding.strip().lower() in ("gzip", "x-gzip"):
        body = gunzip(body, url, limit)
    elif encoding.strip().lower() not in ("", "identity"):
        raise EnvironmentFailure(f"archive {url}: unsupported Content-Encoding {encoding!r}")
    if body.startswith(GZIP_MAGIC):
        body = gunzip(body, url, limit)
    return body


def _reason(e: Exception) -> str:
    """A one-line reason from a requests error (its innermost cause, without the
    object reprs urllib3 puts in)."""
    cause: BaseException = e
    while cause.__context__ is not None and cause.__context__ is not cause:
        cause = cause.__context__
    text = str(cause) or type(cause).__name__
    if "Connection refused" in str(e) or "Connection refused" in text:
        return "connection refused"
    if isinstance(e, requests.Timeout):
        return "timed out"
    text = text.split(": ", 1)[-1] if "object at 0x" in text else text
    return " ".join(text.split())[:200]
