"""A patch series from the mails of a thread: subjects, patches, versions (pure, no I/O)."""

from __future__ import annotations

import email.header
import email.utils
import hashlib
import re
from collections.abc import Sequence
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


@dataclass(frozen=True)
class SubjectInfo:
    """What a subject's bracketed prefix says (``[PATCH v2 RESEND 3/5] area: summary``)."""

    summary: str  # the subject without Re: and the [..] groups
    tags: tuple[str, ...]  # every word of the [..] groups, in order ("XEN", "PATCH", "v2", "3/5")
    is_patch: bool  # a group says PATCH or RFC, or numbers the mail (m/n)
    is_reply: bool  # Re:/Aw:/Fwd: in front
    version: int  # 1 without vN
    number: int | None  # m of m/n
    total: int | None  # n of m/n
    rfc: bool
    resend: bool


@dataclass(frozen=True)
class Patch:
    """One patch mail of a series."""

    number: int
    total: int  # 1/1 for an unnumbered single patch
    mail: Mail
    summary: str  # subject without the [..] prefix
    author: str  # in-body From: if present, else the mail's sender; "Name <addr>" as git
    #             records it (the name not quoted, unlike the header forms of Mail)
    message: str  # the commit message body (after the subject, before ---), trailers included
    trailers: tuple[tuple[str, str], ...]  # (Key, value) in order
    diff: str  # the unified diff text
    files: tuple[str, ...]  # paths the diff touches (b/ side; a/ side for a deletion)
    renames: tuple[tuple[str, str], ...] = ()  # (old path, new path) of each renamed file


@dataclass(frozen=True)
class Series:
    """The series a thread carries (one version of it)."""

    subject: str  # the cover letter's summary, else the first present patch's
    version: int
    rfc: bool
    resend: bool
    message_id: str  # the cover letter's, else the first present patch's
    cover: Mail | None
    patches: tuple[Patch, ...]  # present patches, in number order
    total: int  # n of m/n
    missing: tuple[int, ...]  # numbers 1..total absent from the thread
    base_commit: str | None  # from a base-commit: line (cover or patches)
    thread_addresses: tuple[str, ...]  # every From/To/Cc seen in the thread (dedup, order kept)
    replies: tuple[Mail, ...]  # the thread's mails that are no version's patch or cover
    #                            letter, in thread order
    versions: tuple[int, ...] = ()  # every version the thread holds, ascending


# Re:, and the localised forms mail clients put on replies and forwards.
_REPLY = re.compile(r"^\s*(?:re|aw|sv|antw|fwd?|wg)\s*(?:\[\d+\])?\s*:\s*", re.I)
_GROUP = re.compile(r"^\s*\[([^\[\]]*)\]\s*")
_VERSION = re.compile(r"^v(\d{1,4})$", re.I)
_GLUED_VERSION = re.compile(r"^((?:\w+-)?PATCH|RFC)[-_]?v(\d{1,4})$", re.I)
_NUMBER = re.compile(r"^(\d{1,4})/(\d{1,4})$")


def parse_subject(subject: str) -> SubjectInfo:
    """The tags of SUBJECT's ``[..]`` groups and the summary after them.

    The forms seen on xen-devel: ``[PATCH]``, ``[PATCH v3 2/5]``, ``[RFC PATCH]``,
    ``[PATCH RFC v2]``, ``[PATCH v2 RESEND 1/2]``, ``[XEN PATCH]``,
    ``[PATCH for-4.21 v3 2/5]``, ``[Xen-devel] [PATCH ...]``, ``[PATCH 0/3]``.
    """
    text = " ".join(subject.split())
    is_reply = False
    while (m := _REPLY.match(text)) is not None:
        is_reply, text = True, text[m.end():]
    tags: list[str] = []
    is_patch = rfc = resend = False
    version, number, total = 1, None, None
    while (m := _GROUP.match(text)) is not None:
        text = text[m.end():]
        for word in m.group(1).replace(",", " ").split():
            tags.append(word)
            upper = word.upper()
            if (glued := _GLUED_VERSION.match(word)) is not None:  # [PATCHv2], [RFCv3]
                upper, version = glued.group(1).upper(), max(1, int(glued.group(2)))
            if upper == "PATCH" or upper.endswith("-PATCH"):  # [PATCH], [XEN-PATCH]
                is_patch = True
            elif upper == "RFC":
                is_patch = rfc = True
            elif upper == "RESEND":
                resend = True
            elif (v := _VERSION.match(word)) is not None:
                version = max(1, int(v.group(1)))
            elif (n := _NUMBER.match(word)) is not None:
                number, total = int(n.group(1)), int(n.group(2))
                is_patch = True
        while (m2 := _REPLY.match(text)) is not None:  # "[Xen-devel] Re: [PATCH]"
            is_reply, text = True, text[m2.end():]
    return SubjectInfo(text.strip(), tuple(tags), is_patch, is_reply, version, number, total,
                       rfc, resend)


# --- one mail ------------------------------------------------------------------

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
    return tuple(_format_address(_clean(n), _clean(a))
                 for n, a in email.utils.getaddresses(values) if "@" in a)


def _format_address(name: str, address: str) -> str:
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
        content = part.get_content() if isinstance(part, EmailMessage) else None
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


# --- one patch -------------------------------------------------------------------

_IN_BODY = re.compile(r"^(From|Date|Subject):\s*(.*)$")
_TRAILER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):\s+(\S.*)$")
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
# Lines of a file's header in a git diff (git's diff.c / apply.c).
_FILE_HEADER = ("index ", "new file mode", "deleted file mode", "old mode", "new mode",
                "similarity index", "dissimilarity index", "rename from", "rename to",
                "copy from", "copy to", "Binary files ")
# A line of a git binary patch: "literal N", "delta N", base85 data, or blank (apply.c).
_BINARY_LINE = re.compile(r"^(?:(?:literal|delta) \d+|[A-Za-z][0-9A-Za-z!#$%&()*+;<=>?@^_`{|}~-]*)?\n?$")


def _split_message(body: str) -> tuple[str, str]:
    """(commit message, the rest) split where ``git mailinfo`` splits: a ``---`` line,
    or the first ``diff -``/``Index:`` line (mailinfo.c, patchbreak())."""
    lines = body.splitlines(keepends=True)
    for i, line in enumerate(lines):
        bare = line.rstrip()
        if bare == "---" or line.startswith(("diff -", "Index: ")):
            return "".join(lines[:i]), "".join(lines[i:])
    return body, ""


def _in_body_headers(message: str) -> tuple[dict[str, str], str]:
    lines = message.lstrip("\n").splitlines(keepends=True)
    found: dict[str, str] = {}
    i = 0
    while i < len(lines) and (m := _IN_BODY.match(lines[i].rstrip("\n"))) is not None:
        found[m.group(1)] = m.group(2).strip()
        i += 1
    if found and (i == len(lines) or not lines[i].strip()):
        return found, "".join(lines[i:]).lstrip("\n")
    return {}, message.lstrip("\n")


def parse_trailers(message: str) -> tuple[tuple[str, str], ...]:
    """The trailers of MESSAGE's last paragraph, as ``git interpret-trailers`` finds them:
    the paragraph counts when all its lines are trailers, or when 25% or more are
    and one is a Signed-off-by (trailer.c, find_end_of_log_message() and
    find_trailer_block_start())."""
    paragraphs = re.split(r"\n\s*\n", message.strip("\n"))
    last = paragraphs[-1].splitlines() if paragraphs and paragraphs[-1].strip() else []
    found: list[tuple[str, str]] = []
    other = 0
    for line in last:
        if (m := _TRAILER.match(line.rstrip())) is not None:
            found.append((m.group(1), m.group(2).strip()))
        elif line[:1] in (" ", "\t") and found:  # a folded trailer continues
            key, value = found[-1]
            found[-1] = (key, f"{value} {line.strip()}")
        else:
            other += 1
    recognised = any(k.lower() == "signed-off-by" for k, _ in found)
    if not found or (other and not (recognised and len(found) * 3 >= other)):
        return ()
    return tuple(found)


def _hunk(lines: list[str], i: int, old: int, new: int, out: list[str]) -> int:
    """Copy the OLD/NEW lines of the hunk whose header is lines[i] into OUT; returns the
    index of its last line (a reply or a signature after it is not part of it)."""
    while (old > 0 or new > 0) and i + 1 < len(lines):
        tag = lines[i + 1][:1]
        if tag in (" ", "\n"):  # a blank context line: a mailer dropped its space
            old, new = old - 1, new - 1
        elif tag == "-":
            old -= 1
        elif tag == "+":
            new -= 1
        elif tag != "\\":  # "\ No newline at end of file"
            break
        out.append(lines[i + 1])
        i += 1
    if i + 1 < len(lines) and lines[i + 1].startswith("\\"):
        out.append(lines[i + 1])
        i += 1
    return i


def _diff_path(line: str) -> str:
    path = line[4:].rstrip("\n").split("\t")[0].strip()
    if path.startswith('"') and path.endswith('"'):  # git quotes unusual names (quote.c)
        raw = path[1:-1].encode("utf-8", "backslashreplace").decode("unicode_escape")
        path = raw.encode("latin-1", "replace").decode("utf-8", "replace")
    return path[2:] if path.startswith(("a/", "b/")) else path


def extract_diff(text: str) -> tuple[str, tuple[str, ...]]:
    """The unified diff in TEXT (from its first ``diff --git``/``--- `` header to the end
    of its last hunk, so a signature or a reply after it is not part of it) and the
    paths it touches (the ``+++`` side; the ``---`` side for a deletion)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    files: list[str] = []
    i = 0
    in_file = binary = have_paths = False
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            in_file, binary, have_paths = True, False, False
            out.append(line)
            parts = line.split()
            if len(parts) >= 4 and parts[3].startswith("b/"):
                files.append(parts[3][2:])
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            minus, plus = _diff_path(line), _diff_path(lines[i + 1])
            path = minus if plus == "/dev/null" else plus
            if in_file and not have_paths and files:
                files[-1] = path  # the diff --git line's guess, now known
            else:
                files.append(path)  # a plain diff: each file starts here
            in_file, have_paths = True, True
            out += [line, lines[i + 1]]
            i += 1
        elif in_file and (m := _HUNK.match(line)) is not None:
            out.append(line)
            i = _hunk(lines, i, int(m.group(1) or 1), int(m.group(2) or 1), out)
        elif in_file and line.startswith("GIT binary patch"):
            binary = True
            out.append(line)
        elif in_file and binary and _BINARY_LINE.match(line):
            out.append(line)
        elif in_file and not have_paths and line.startswith(_FILE_HEADER):
            out.append(line)
        else:
            in_file = False
        i += 1
    return "".join(out), tuple(dict.fromkeys(files))


def parse_patch(mail: Mail, info: SubjectInfo) -> Patch:
    """The Patch MAIL carries (INFO: its parsed subject)."""
    message, rest = _split_message(mail.body)
    headers, message = _in_body_headers(message)
    diff, files = extract_diff(rest)
    number = info.number if info.number is not None else 1
    total = info.total if info.total is not None else 1
    summary = info.summary
    if "Subject" in headers:
        summary = parse_subject(headers["Subject"]).summary or summary
    return Patch(number=number, total=total, mail=mail, summary=summary,
                 author=_git_ident(headers.get("From") or mail.sender),
                 message=message.rstrip() + "\n" if message.strip() else "",
                 trailers=parse_trailers(message), diff=diff, files=files,
                 renames=tuple(zip(_RENAME_FROM.findall(diff), _RENAME_TO.findall(diff),
                                   strict=False)))


_RENAME_FROM = re.compile(r"^rename from (.+)$", re.M)
_RENAME_TO = re.compile(r"^rename to (.+)$", re.M)


def _git_ident(address: str) -> str:
    """``Name <addr>`` as git records an author (the name unquoted, decoded)."""
    pairs = email.utils.getaddresses([address])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        return " ".join(address.split())
    name, addr = pairs[0]
    if "=?" in name:  # an RFC 2047 word in an in-body From:
        try:
            name = str(email.header.make_header(email.header.decode_header(name)))
        except (ValueError, LookupError):
            pass
    return f"{' '.join(name.split())} <{addr}>" if name.strip() else addr


# --- the series ------------------------------------------------------------------

_BASE_COMMIT = re.compile(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", re.M)


def _has_diff(body: str) -> bool:
    return re.search(r"^(diff --git |--- \S.*\n\+\+\+ )", body, re.M) is not None


def _classify(mails: Sequence[Mail]) -> tuple[list[tuple[Mail, SubjectInfo]], list[Mail]]:
    """(patch and cover mails with their subjects, the other mails)."""
    series: list[tuple[Mail, SubjectInfo]] = []
    others: list[Mail] = []
    for mail in mails:
        info = parse_subject(mail.subject)
        if not info.is_patch or info.is_reply:
            others.append(mail)
        elif info.number == 0 or (info.number is not None and info.number > 0) \
                or _has_diff(mail.body):
            series.append((mail, info))
        else:
            others.append(mail)
    return series, others


def _thread_addresses(mails: Sequence[Mail]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for mail in mails:
        for addr in (mail.sender, *mail.to, *mail.cc):
            key = email.utils.parseaddr(addr)[1].lower() or addr.lower()
            if key and key not in seen:
                seen[key] = addr
    return tuple(seen.values())


def thread_root(mail: Mail) -> str | None:
    """The Message-ID that starts MAIL's thread (the first References id, else the
    In-Reply-To id, else its own); None for a mail without a Message-ID of its own
    and no thread headers (a git format-patch file, threaded by its numbering only)."""
    if mail.references:
        return mail.references[0]
    if mail.in_reply_to:
        return mail.in_reply_to
    return None if mail.synthetic_id else mail.message_id


def select_thread(mails: Sequence[Mail], message_id: str) -> list[Mail]:
    """The mails of MAILS linked to MESSAGE_ID through In-Reply-To/References (the
    whole thread, as public-inbox threads it); InputError when none has that id."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x] = parent.get(parent[x], parent[x])
        return x

    for mail in mails:
        for other in (*mail.references, *([mail.in_reply_to] if mail.in_reply_to else [])):
            a, b = find(mail.message_id), find(other)
            if a != b:
                parent[a] = b
    wanted = message_id.strip().strip("<>")
    if not any(m.message_id == wanted for m in mails):
        raise InputError(f"no message <{wanted}> among the {len(mails)} mails")
    root = find(wanted)
    return [m for m in mails if find(m.message_id) == root]


_Key = tuple[int, int, str | None]  # version, total, thread root


def _replaces(mail: Mail, earlier: Mail) -> bool:
    """A later mail with the same number replaces an earlier one (a RESEND), unless it
    answers that mail (a reply whose client kept the subject without "Re:") or brings
    no diff where the earlier one had one."""
    if earlier.message_id in mail.references or mail.in_reply_to == earlier.message_id:
        return False
    return _has_diff(mail.body) or not _has_diff(earlier.body)


def _group(candidates: Sequence[tuple[Mail, SubjectInfo]]
           ) -> tuple[dict[_Key, dict[int, tuple[Mail, SubjectInfo]]], list[Mail]]:
    """(version, total, thread root) -> number -> mail, and the mails that only look
    like patches (see _replaces); a RESEND replaces the mail it resends."""
    groups: dict[_Key, dict[int, tuple[Mail, SubjectInfo]]] = {}
    lookalikes: list[Mail] = []
    for mail, info in candidates:
        total = info.total if info.total is not None else 1
        number = info.number if info.number is not None else 1
        numbered = groups.setdefault((info.version, total, thread_root(mail)), {})
        earlier = numbered.get(number)
        if earlier is None or _replaces(mail, earlier[0]):
            numbered[number] = (mail, info)
        else:
            lookalikes.append(mail)
    kept = {k: v for k, v in groups.items() if any(0 < n <= k[1] for n in v)}
    return kept, lookalikes


def assemble(mails: Sequence[Mail], version: int | None = None, *,
             max_patches: int | None = None) -> Series:
    """The series MAILS (one thread) carries: the newest version whose patches are all
    there, unless VERSION; when no version is complete, the newest.  Among equals the
    longer series wins (not a one-patch suggestion posted in the thread), then the
    later one.  Missing patch numbers are listed, never guessed.  InputError when
    there is no patch, when VERSION is not in the thread, or when the chosen version
    has more than MAX_PATCHES."""
    if not mails:
        raise InputError("the thread has no mail")
    candidates, others = _classify(mails)
    groups, lookalikes = _group(candidates)
    replies = {id(m) for m in [*others, *lookalikes]}
    if not groups:
        raise InputError("no patch in the thread (no [PATCH] mail with a diff)")
    versions = tuple(sorted({v for v, _, _ in groups}))
    keys = [k for k in groups if version is None or k[0] == version]
    if not keys:
        have = ", ".join(f"v{v}" for v in versions)
        raise InputError(f"version {version} is not in the thread (it has {have})")

    def complete(key: _Key) -> bool:
        return all(n in groups[key] for n in range(1, key[1] + 1))

    order = {k: i for i, k in enumerate(groups)}
    key = max(keys, key=lambda k: (complete(k), k[0], k[1], order[k]))
    chosen = groups[key]
    ver, total, _ = key
    numbers = sorted(n for n in chosen if 0 < n <= total)
    if max_patches is not None and len(numbers) > max_patches:
        raise InputError(f"v{ver} has {len(numbers)} patches, more than the limit of "
                         f"{max_patches} ([review].max_patches)")
    patches = tuple(parse_patch(chosen[n][0], chosen[n][1]) for n in numbers)
    cover_entry = chosen.get(0)
    cover = cover_entry[0] if cover_entry else None
    infos = [chosen[n][1] for n in numbers] + ([cover_entry[1]] if cover_entry else [])
    base = None
    for mail in ([cover] if cover else []) + [p.mail for p in patches]:
        if (m := _BASE_COMMIT.search(mail.body)) is not None:
            base = m.group(1)
            break
    first = patches[0]
    return Series(
        subject=parse_subject(cover.subject).summary if cover else first.summary,
        version=ver, rfc=any(i.rfc for i in infos), resend=any(i.resend for i in infos),
        message_id=cover.message_id if cover else first.mail.message_id,
        cover=cover, patches=patches, total=total,
        missing=tuple(n for n in range(1, total + 1) if n not in chosen),
        base_commit=base, thread_addresses=_thread_addresses(mails),
        replies=tuple(m for m in mails if id(m) in replies), versions=versions)
