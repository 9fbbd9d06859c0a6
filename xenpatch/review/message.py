"""One mail of a thread, parsed: headers decoded and cleaned, body as text (pure, no I/O)."""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from ..errors import InputError


@dataclass(frozen=True)
class Mail:
    """One message of a thread."""

    message_id: str  # without <>
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str  # unfolded Subject header, decoded
    sender: str  # "Name <addr>" from From:
    date: str  # the Date header as sent
    to: tuple[str, ...]
    cc: tuple[str, ...]
    body: str  # decoded text/plain body (and inline or attached text/x-patch parts)
    raw: bytes  # the message as received (for git am)
    # True when the mail had no Message-ID (a git format-patch file): message_id is
    # then made from a digest of the bytes (…@xenpatch.invalid) and no reply can cite it.
    synthetic_id: bool = False


_MSGID = re.compile(r"<([^<>\s]+)>")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_MULTIPART = re.compile(rb"^content-type:\s*multipart/", re.I | re.M)
MAX_MIME_PARTS = 200  # a patch mail has one or two; a deeper tree is an attack on the parser
_PATCH_TYPES = ("text/x-patch", "text/x-diff", "text/x-csrc", "text/x-chdr")


def _ids(value: str) -> tuple[str, ...]:
    found = _MSGID.findall(value)
    if not found and value.strip() and "<" not in value:
        found = value.split()[:1]  # a bare id, as some clients write it
    return tuple(found)


def _clean(text: str) -> str:
    """TEXT unfolded, with undecodable bytes and control characters (a terminal escape
    in a Subject) shown as U+FFFD, so no header text can act on a terminal or a report."""
    return _CONTROL.sub("\ufffd", " ".join(text.split()))


def _header(msg: Message, name: str) -> str:
    """The header NAME decoded and unfolded; its raw text when it does not decode."""
    try:
        value = msg.get(name)
        text = str(value) if value is not None else ""
    except (ValueError, IndexError, TypeError, LookupError):
        raw = [v for k, v in msg.raw_items() if k.lower() == name.lower()]
        text = str(raw[0]) if raw else ""
    return _clean(text)


def _addresses(msg: Message, name: str) -> tuple[str, ...]:
    values: list[str] = []
    for value in msg.get_all(name, []):
        try:
            values.append(str(value))
        except (ValueError, IndexError, TypeError):
            continue
    return tuple(format_address(_clean(n), _clean(a))
                 for n, a in email.utils.getaddresses(values) if "@" in a)


def format_address(name: str, address: str) -> str:
    """``Name <address>`` with the name decoded (not RFC 2047-encoded again) and quoted
    when RFC 5322 says it must be."""
    name = " ".join(name.split())
    if not name:
        return address
    if re.search(r'[()<>\[\]:;@\\,."]', name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def _part_text(part: Message) -> str:
    try:
        # 8-bit text that names no charset (``git format-patch`` output sent as it is, when
        # only the diff is 8-bit) is taken as UTF-8, as ``git am`` takes its bytes; the
        # email package would read it as ASCII, every such byte a U+FFFD
        content = part.get_content() if isinstance(part, EmailMessage) \
            and part.get_param("charset") is not None else None
    except (LookupError, ValueError, AssertionError, KeyError):
        content = None
    if not isinstance(content, str):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content.replace("\r\n", "\n")  # as git mailsplit does without --keep-cr


def _body(msg: Message) -> str:
    if not msg.is_multipart():
        return _part_text(msg) if msg.get_content_maintype() in ("text", "") else ""
    texts: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = part.get_filename() or ""
        attachment = part.get_content_disposition() == "attachment"
        if ctype == "text/plain" and not attachment:
            texts.append(_part_text(part))
        elif ctype in _PATCH_TYPES or (ctype.startswith("text/")
                                       and filename.endswith((".patch", ".diff"))):
            texts.append(_part_text(part))
    return "\n".join(t if t.endswith("\n") or not t else t + "\n" for t in texts)


def looks_like_mail(raw: bytes) -> bool:
    """RAW starts with a header line (RFC 5322 field name, a colon)."""
    return re.match(rb"^[!-9;-~]+:", raw.lstrip()[:1000]) is not None


_THREAD_HEADER = re.compile(rb"^(message-id|in-reply-to|references)[ \t]*:(.*)$", re.I | re.M)


def references_of(raw: bytes) -> tuple[str, tuple[str, ...]]:
    """(Message-ID, the ids of In-Reply-To and References) from RAW's header only, by a
    plain scan of the unfolded header (an archive index reads thousands of these)."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    head = re.sub(rb"\r?\n[ \t]+", b" ", head)
    found: dict[bytes, str] = {}
    for name, value in _THREAD_HEADER.findall(head):
        found.setdefault(name.lower(), value.decode("latin-1"))
    ids = _ids(found.get(b"message-id", ""))
    parents = _ids(found.get(b"in-reply-to", "")) + _ids(found.get(b"references", ""))
    return (ids[0] if ids else ""), tuple(dict.fromkeys(parents))


def parse_mail(raw: bytes) -> Mail:
    """The Mail RAW is; InputError when RAW has no mail header at all.

    A message without a Message-ID (a ``git format-patch`` file) gets one made
    from a digest of its bytes, so the same file always has the same id.
    """
    if not looks_like_mail(raw):
        raise InputError("not a mail (it does not start with a header line)")
    if len(_MULTIPART.findall(raw)) > MAX_MIME_PARTS:
        raise InputError(f"more than {MAX_MIME_PARTS} MIME multiparts in one mail")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        body = _body(msg)
    except RecursionError as e:
        raise InputError("MIME parts nested too deep") from e
    ids = _ids(_header(msg, "Message-ID"))
    message_id = ids[0] if ids else f"{hashlib.sha256(raw).hexdigest()[:32]}@xenpatch.invalid"
    reply_to = _ids(_header(msg, "In-Reply-To"))
    refs = _ids(_header(msg, "References"))
    senders = _addresses(msg, "From")
    return Mail(message_id=message_id,
                in_reply_to=reply_to[0] if reply_to else None,
                references=refs, subject=_header(msg, "Subject"),
                sender=senders[0] if senders else _header(msg, "From"),
                date=_header(msg, "Date"), to=_addresses(msg, "To"), cc=_addresses(msg, "Cc"),
                body=body, raw=raw, synthetic_id=not ids)
