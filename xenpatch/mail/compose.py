"""Mail messages from a series's patch files: headers, recipients, threading (pure).

Threading is that of ``git send-email --thread --no-chain-reply-to``
(git-send-email.perl: after the first message, every later one replies to
it): the cover letter (or the first patch) starts the thread, or replies to
``--in-reply-to``; every other message has ``In-Reply-To`` the cover letter
and ``References`` the chain up to it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, getaddresses

from ..errors import InputError, UsageError
from .maintainers import Recipients

# git format-patch names: NNNN-subject.patch, vN-NNNN-subject.patch with -v N.
SERIES_FILE = re.compile(r"^(?:v\d+-)?(\d{4})-.+\.patch$")
# RFC 5321 4.5.3.1.6: a line is at most 998 octets plus CRLF.
MAX_LINE = 998
# Headers are folded only past RFC 5322's hard limit: Python's folding at 78
# puts a long "[PATCH n/m] ..." Subject on a continuation line, and readers
# then see a leading blank.
MAIL_POLICY = policy.SMTP.clone(max_line_length=MAX_LINE)


@dataclass(frozen=True)
class PatchFile:
    """One file of a ``git format-patch`` series."""

    name: str
    number: int
    author: str
    subject: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    body: bytes
    raw: bytes
    # The In-Reply-To: header ``git format-patch --in-reply-to`` wrote (generate --version 2
    # threads to v1's cover letter this way), without the <>; None when there is none.
    in_reply_to: str | None = None

    @property
    def is_cover(self) -> bool:
        return self.number == 0


@dataclass(frozen=True)
class Outgoing:
    """A message ready to go: who gets it, where it sits in the thread, and the message."""

    name: str
    message_id: str
    subject: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    in_reply_to: str | None
    references: tuple[str, ...]
    message: EmailMessage = field(compare=False, repr=False)

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(a for _, a in getaddresses(list(self.to + self.cc)))


def parse_patch_file(name: str, data: bytes) -> PatchFile:
    """A series file (``NNNN-subject.patch``); InputError naming it if it is not one."""
    m = SERIES_FILE.match(name)
    if m is None:
        raise InputError(f"{name}: not a series file (NNNN-subject.patch)")
    head, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    headers = BytesHeaderParser(policy=policy.default).parsebytes(head + b"\n\n")
    subject, author = str(headers.get("Subject", "")), str(headers.get("From", ""))
    if not sep or not subject or not author:
        raise InputError(f"{name}: not a patch (no From:/Subject: mail header)")
    number = int(m.group(1))
    if number == 0 and "*** SUBJECT HERE ***" in subject:
        raise InputError(f"{name}: the cover letter still says *** SUBJECT HERE ***")
    if number and not (b"\ndiff --git " in b"\n" + body or b"\n+++ " in b"\n" + body):
        raise InputError(f"{name}: not a patch (no diff in it)")
    try:  # found while reading, before any identity or SMTP setting is looked at
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: not UTF-8 (byte {e.start})") from e
    reply = str(headers.get("In-Reply-To", "")).strip().strip("<>") or None
    return PatchFile(name, number, author, subject,
                     _header_addresses(headers.get_all("To", [])),
                     _header_addresses(headers.get_all("Cc", [])), body, data, reply)


def _header_addresses(values: Iterable[object]) -> tuple[str, ...]:
    return tuple(_format(n, a) for n, a in getaddresses([str(v) for v in values]) if a)


def _format(name: str, address: str) -> str:
    """``Name <address>``, the name quoted when RFC 5322 says it must be."""
    if not name:
        return address
    if re.search(r'[()<>\[\]:;@\\,."]', name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def check_series(files: Sequence[PatchFile], where: str) -> tuple[PatchFile, ...]:
    """The files in order; the numbers must be 1..n, with an optional 0 cover letter."""
    ordered = tuple(sorted(files, key=lambda f: f.number))
    numbers = [f.number for f in ordered if not f.is_cover]
    if not numbers:
        raise InputError(f"{where}: no series (no NNNN-*.patch patch files)")
    if numbers != list(range(1, len(numbers) + 1)) or \
            sum(1 for f in ordered if f.is_cover) > 1:
        raise InputError(f"{where}: patch numbers {numbers} are not 1..{len(numbers)}")
    return ordered


def check_address(option: str, text: str) -> str:
    """One e-mail address from the command line, or UsageError naming the option."""
    found = getaddresses([text])
    ok = (len(found) == 1 and "\n" not in text and "\r" not in text and
          re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+", found[0][1] or "") is not None)
    if not ok:
        raise UsageError(f"{option} {text!r}: not an e-mail address")
    return _format(*found[0])


def check_message_id(text: str) -> str:
    mid = text.strip()
    if not mid.startswith("<"):
        mid = f"<{mid}>"
    if not re.fullmatch(r"<[^<>\s@]+@[^<>\s@]+>", mid):
        raise UsageError(f"--in-reply-to {text!r}: not a Message-ID")
    return mid


def message_ids(files: Sequence[PatchFile], sender: str, date: datetime) -> dict[str, str]:
    """Fresh Message-IDs for a series: date, a digest of the series and the sender, and the number."""
    digest = hashlib.sha256(sender.encode())
    for f in files:
        digest.update(f.raw)
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "xenpatch.invalid"
    stamp = date.strftime("%Y%m%d%H%M%S")
    return {f.name: f"<{stamp}.{digest.hexdigest()[:12]}-{f.number}-xenpatch@{domain}>"
            for f in files}


def merge_recipients(*groups: Iterable[str]) -> tuple[str, ...]:
    """Addresses in order, each mailbox once (compared case-insensitively)."""
    seen: dict[str, str] = {}
    for group in groups:
        for text in group:
            for name, address in getaddresses([text]):
                if address and address.lower() not in seen:
                    seen[address.lower()] = _format(name, address)
    return tuple(seen.values())


@dataclass(frozen=True)
class SeriesMail:
    """What every message of a series shares: sender, list, extra To/Cc, thread root."""

    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    in_reply_to: str | None
    date: datetime


def compose_series(files: Sequence[PatchFile], found: Mapping[str, Recipients],
                   ids: Mapping[str, str], mail: SeriesMail) -> tuple[Outgoing, ...]:
    """Every message of the series, threaded; FOUND holds each patch's maintainers."""
    to_cc: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for f in files:
        if not f.is_cover:
            r = found.get(f.name, Recipients((), ()))
            to_cc[f.name] = (merge_recipients(mail.to, r.to, f.to),
                             merge_recipients(mail.cc, r.cc, f.cc))
    for f in files:
        if f.is_cover:
            to_cc[f.name] = (merge_recipients(mail.to, *(t for t, _ in to_cc.values()), f.to),
                             merge_recipients(mail.cc, *(c for _, c in to_cc.values()), f.cc))
    out: list[Outgoing] = []
    root = ids[files[0].name]
    for i, f in enumerate(files):
        to, cc = to_cc[f.name]
        to_lower = {a.lower() for _, a in getaddresses(list(to))}
        cc = tuple(c for c in cc if getaddresses([c])[0][1].lower() not in to_lower)
        above: tuple[str, ...] = (mail.in_reply_to,) if mail.in_reply_to else ()
        parent, refs = (mail.in_reply_to, above) if i == 0 else (root, above + (root,))
        msg = build_message(f, mail.sender, to, cc, ids[f.name], parent, refs,
                            mail.date + timedelta(seconds=i))
        out.append(Outgoing(f.name, ids[f.name], f.subject, to, cc, parent, refs, msg))
    return tuple(out)


def build_message(f: PatchFile, sender: str, to: Sequence[str], cc: Sequence[str],
                  message_id: str, in_reply_to: str | None, references: Sequence[str],
                  date: datetime) -> EmailMessage:
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = f.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join(references)
    body = f.body
    if not f.is_cover and _address(f.author) != _address(sender):
        # git send-email: a patch by someone else keeps its author in the body.
        body = f"From: {f.author}\n\n".encode() + body
    msg.set_content(body, maintype="text", subtype="plain", cte=_transfer_encoding(f.name, body))
    if msg.get("Content-Transfer-Encoding") != "7bit":
        msg.set_param("charset", "utf-8")
    return msg


def _address(text: str) -> str:
    found = getaddresses([text])
    return found[0][1].lower() if found else ""


def _transfer_encoding(name: str, body: bytes) -> str:
    """7bit for plain ASCII; 8bit for UTF-8; quoted-printable when lines are too long or
    carry a CR (git send-email's --transfer-encoding=auto makes the same choice)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: not UTF-8 (byte {e.start})") from e
    if b"\r" in body or any(len(line) > MAX_LINE for line in body.split(b"\n")):
        return "quoted-printable"
    return "7bit" if body.isascii() else "8bit"


def mbox(messages: Sequence[Outgoing]) -> bytes:
    """The messages as an mboxrd file (``git am --patch-format=mboxrd`` reads it back)."""
    out = bytearray()
    for m in messages:
        data = m.message.as_bytes(policy=MAIL_POLICY.clone(linesep="\n"))
        out += b"From mboxrd@z Thu Jan  1 00:00:00 1970\n"
        for line in data.split(b"\n"):
            out += (b">" + line if re.match(rb"^>*From ", line) else line) + b"\n"
    return bytes(out)
