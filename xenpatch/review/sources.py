"""Where a series under review comes from: mbox, maildir, format-patch files, archives."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from ..errors import InputError, UsageError
from ..mail import archive as http_archive
from . import mbox
from .limits import Limits
from .series import Mail, looks_like_mail, parse_mail, select_thread

_URL = re.compile(r"^https?://", re.I)
# A Message-ID: <local@domain> (RFC 5322 msg-id, loosely: a "/" is allowed, as some
# mailers write them), or bare local@domain (without "/", so that a path is not one).
_MESSAGE_ID = re.compile(r"^<([^<>\s]+@[^<>\s]+)>$|^([^<>\s/]+@[^<>\s/]+)$")


def load(source: str, *, archive: str | None, message_id: str | None, limits: Limits) -> list[Mail]:
    """The mails of the thread SOURCE names, decided by what SOURCE is:

    * ``http(s)://`` -- a thread URL of a public-inbox archive;
    * an existing file -- an mbox (mboxo or mboxrd, gzip-compressed or not) or one mail;
    * an existing directory -- a maildir (``cur/``, ``new/``), a public-inbox v2
      git mirror (``git/N.git`` epochs, or one epoch's clone; MESSAGE_ID picks the
      thread), or a directory of ``git format-patch`` files (``*.patch``);
      with MESSAGE_ID, only the thread of that message is kept from a file or
      directory that holds several;
    * otherwise a Message-ID (``<id>`` or bare) looked up under ARCHIVE.
    """
    if _URL.match(source):
        base, mid = http_archive.split_thread_url(source)
        return _from_archive(base, mid, limits)
    path = Path(source)
    if path.is_dir() or path.exists():
        mails = _load_directory(path, message_id, limits) if path.is_dir() \
            else _load_file(path, limits)
        if message_id is None:
            return mails
        try:
            return select_thread(mails, message_id)
        except InputError as e:
            raise InputError(f"{source}: {e}") from e
    if (m := _MESSAGE_ID.match(source)) is not None:
        if not archive:
            raise UsageError(f"{source}: a Message-ID needs an archive (--archive URL or "
                             "[list].archive)")
        return _from_archive(archive, m.group(1) or m.group(2), limits)
    raise InputError(f"{source}: no such file or directory, and not a Message-ID or URL")


def fetch_settings(limits: Limits) -> http_archive.Fetch:
    """The HTTP settings LIMITS gives the archive client."""
    return http_archive.Fetch(timeout=limits.http_timeout, retries=limits.http_retries,
                              max_bytes=limits.max_decompressed_bytes)


def _from_archive(base: str, message_id: str, limits: Limits) -> list[Mail]:
    data = http_archive.fetch_thread(base, message_id, fetch_settings(limits))
    return mails_from_bytes(data, http_archive.message_url(base, message_id), limits)


def _read(path: Path, limit: int, what: str) -> bytes:
    """The bytes of the regular file PATH, refusing one larger than LIMIT before reading."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file")
        if st.st_size > limit:
            raise InputError(f"{path}: larger than {limit} bytes ({what})")
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from e
    if len(data) > limit:
        raise InputError(f"{path}: larger than {limit} bytes ({what})")
    return data


def mails_from_bytes(data: bytes, name: str, limits: Limits) -> list[Mail]:
    """The mails of DATA, an mbox (gzip-compressed or not) or a single mail."""
    if data.startswith(mbox.GZIP_MAGIC):
        data = mbox.gunzip(data, name, limits.max_decompressed_bytes)
    if mbox.is_mbox(data):
        raws = mbox.split_mbox(data, name, max_messages=limits.max_messages,
                               max_message_bytes=limits.max_message_bytes)
    elif not looks_like_mail(data):
        raise InputError(f"{name}: neither an mbox (no 'From ' line at the start) nor a mail "
                         "(no header line at the start)")
    else:
        if len(data) > limits.max_message_bytes:
            raise InputError(f"{name}: larger than {limits.max_message_bytes} bytes "
                             "([review].max_message_bytes)")
        raws = [data]
    mails = []
    for i, raw in enumerate(raws, 1):
        try:
            mails.append(parse_mail(raw))
        except InputError as e:
            where = f"{name}: message {i}" if len(raws) > 1 else name
            raise InputError(f"{where}: {e}") from e
    if not mails:
        raise InputError(f"{name}: no message in it")
    return mails


def _load_file(path: Path, limits: Limits) -> list[Mail]:
    # A gzip file may inflate up to the decompression bound; a plain one is an mbox
    # of at most max_messages mails of max_message_bytes each.
    cap = max(limits.max_decompressed_bytes, limits.max_message_bytes)
    return mails_from_bytes(_read(path, cap, "[review].max_decompressed_bytes"), str(path), limits)


def _load_directory(path: Path, message_id: str | None, limits: Limits) -> list[Mail]:
    if (path / "cur").is_dir() and (path / "new").is_dir():
        return _load_maildir(path, limits)
    if (path / "git").is_dir() or (path / "objects").is_dir() or (path / ".git").exists():
        if message_id is None:
            raise UsageError(f"{path}: a public-inbox git mirror needs --message-id to pick "
                             "the thread")
        from . import mirror
        return mirror.load_thread(path, message_id.strip().strip("<>"), limits)
    files = sorted(p for p in path.iterdir() if p.name.endswith(".patch")
                   and (p.is_file() or p.is_symlink()))
    if not files:
        raise InputError(f"{path}: not a maildir (cur/, new/), a public-inbox mirror (git/) "
                         "or a directory of git format-patch files (*.patch)")
    return _load_files(files, limits)


def _load_files(files: list[Path], limits: Limits) -> list[Mail]:
    if len(files) > limits.max_messages:
        raise InputError(f"{files[0].parent}: more than {limits.max_messages} messages "
                         "([review].max_messages)")
    mails: list[Mail] = []
    for f in files:
        if f.is_symlink():  # a link in a mail directory could hand us any file of the machine
            raise InputError(f"{f}: a symbolic link in a mail directory; refused")
        data = _read(f, limits.max_message_bytes + 1024, "[review].max_message_bytes")
        mails += mails_from_bytes(data, str(f), limits)
        if len(mails) > limits.max_messages:
            raise InputError(f"{f.parent}: more than {limits.max_messages} messages "
                             "([review].max_messages)")
    return mails


def _load_maildir(path: Path, limits: Limits) -> list[Mail]:
    # Maildir names start with the delivery time (maildir(5)), so name order is arrival order.
    files = sorted((p for sub in ("cur", "new") for p in (path / sub).iterdir()
                    if (p.is_file() or p.is_symlink()) and not p.name.startswith(".")),
                   key=lambda p: p.name)
    if not files:
        raise InputError(f"{path}: the maildir has no message")
    return _load_files(files, limits)
