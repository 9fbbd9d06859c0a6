"""The mbox formats (mboxo, mboxrd) and bounded gzip, on bytes (pure, no I/O)."""

from __future__ import annotations

import re
import zlib

from ..errors import InputError

# A "From " separator as git mailsplit and public-inbox write it: "From ADDR DATE",
# the date carrying a time (mailsplit.c, is_from_line(), checks for the colon).
_FROM_LINE = re.compile(rb"^From \S+ +.*\d:\d\d")
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.M)
_DEEP_QUOTED_FROM = re.compile(rb"^>>+From ", re.M)
GZIP_MAGIC = b"\x1f\x8b"


def is_mbox(data: bytes) -> bool:
    """DATA starts with an mbox "From " separator line."""
    return _FROM_LINE.match(data.split(b"\n", 1)[0]) is not None


def mbox_format(data: bytes) -> str:
    """``mboxrd`` or ``mboxo``: the two differ only on lines that were ``>From`` before
    quoting (mboxrd quotes them again, mboxo does not), so a file with a ``>>From``
    line, or whose separators say ``mboxrd@z`` (public-inbox), is read as mboxrd."""
    first = data.split(b"\n", 1)[0]
    if b"mboxrd@z" in first or _DEEP_QUOTED_FROM.search(data):
        return "mboxrd"
    return "mboxo"


def unquote(message: bytes, fmt: str) -> bytes:
    """MESSAGE with its ``>From`` quoting undone: mboxrd takes one ``>`` off every
    ``>+From`` line, mboxo off ``>From`` lines only."""
    if fmt == "mboxrd":
        return _QUOTED_FROM.sub(rb"\1", message)
    return re.sub(rb"^>From ", b"From ", message, flags=re.M)


def split_mbox(data: bytes, name: str, *, max_messages: int, max_message_bytes: int) -> list[bytes]:
    """The messages of the mbox DATA (separator lines dropped, quoting undone).

    A separator counts only at the start or after a blank line, as mboxo and
    mboxrd writers put them.  InputError naming NAME for a file that is not an
    mbox, or for more messages (or a bigger message) than the limits allow.
    """
    if not is_mbox(data):
        raise InputError(f"{name}: not an mbox (it does not start with a 'From ' line)")
    fmt = mbox_format(data)
    messages: list[bytes] = []
    current: list[bytes] = []
    size = 0
    previous_blank = True
    started = False

    def flush() -> None:
        if started:
            messages.append(unquote(b"".join(current), fmt))

    for line in data.splitlines(keepends=True):
        if previous_blank and _FROM_LINE.match(line):
            flush()
            if len(messages) >= max_messages:
                raise InputError(f"{name}: more than {max_messages} messages "
                                 "([review].max_messages)")
            current, size, started = [], 0, True
            previous_blank = False
            continue
        size += len(line)
        if size > max_message_bytes:
            raise InputError(f"{name}: message {len(messages) + 1} is larger than "
                             f"{max_message_bytes} bytes ([review].max_message_bytes)")
        current.append(line)
        previous_blank = line in (b"\n", b"\r\n")
    flush()
    # The writer's blank line before the next separator belongs to the mbox, not the message.
    return [m[:-1] if m.endswith(b"\n\n") else m for m in messages]


def to_mboxrd(messages: list[bytes]) -> bytes:
    """MESSAGES as one mboxrd file (``git am --patch-format=mboxrd`` reads it back exactly)."""
    out: list[bytes] = []
    for message in messages:
        body = re.sub(rb"^(>*From )", rb">\1", message.replace(b"\r\n", b"\n"), flags=re.M)
        out.append(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + body
                   + (b"" if body.endswith(b"\n") else b"\n") + b"\n")
    return b"".join(out)


def gunzip(data: bytes, name: str, limit: int) -> bytes:
    """DATA decompressed (gzip, several members allowed), never more than LIMIT bytes:
    InputError naming NAME and the limit for a larger result (a gzip bomb) or a
    damaged stream."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        chunk = rest
        try:
            while True:  # decompress(b"", cap) drains output zlib still holds
                piece = inflater.decompress(chunk, limit + 1 - len(out))
                out += piece
                if len(out) > limit:
                    raise InputError(f"{name}: decompresses to more than {limit} bytes "
                                     "([review].max_decompressed_bytes)")
                chunk = inflater.unconsumed_tail
                if inflater.eof or (not chunk and not piece):
                    break
        except zlib.error as e:
            raise InputError(f"{name}: damaged gzip data ({e})") from e
        if not inflater.eof:
            raise InputError(f"{name}: truncated gzip data")
        rest = inflater.unused_data
        if rest and not rest.startswith(GZIP_MAGIC):
            break  # trailing garbage after the last member, as gzip -d tolerates
    return bytes(out)
