"""One patch mail: its subject's tags, commit message, trailers and diff (pure, no I/O)."""

from __future__ import annotations

import email.header
import email.utils
import re
from dataclasses import dataclass

from .message import Mail, format_address


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
    author: str  # in-body From: if present, else the mail's sender; "Name <addr>" in
    #             header form like Mail.sender (name quoted when RFC 5322 needs it)
    message: str  # the commit message body (after the subject, before ---), trailers included
    trailers: tuple[tuple[str, str], ...]  # (Key, value) in order
    diff: str  # the unified diff text
    files: tuple[str, ...]  # paths the diff touches (b/ side; a/ side for a deletion)
    renames: tuple[tuple[str, str], ...] = ()  # (old path, new path) of each renamed file


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
                 author=_author(headers.get("From") or mail.sender),
                 message=message.rstrip() + "\n" if message.strip() else "",
                 trailers=parse_trailers(message), diff=diff, files=files,
                 renames=tuple(zip(_RENAME_FROM.findall(diff), _RENAME_TO.findall(diff),
                                   strict=False)))


_RENAME_FROM = re.compile(r"^rename from (.+)$", re.M)
_RENAME_TO = re.compile(r"^rename to (.+)$", re.M)


_NAME_ADDR = re.compile(r"^(.*?)\s*<([^<>\s]+@[^<>\s]+)>\s*$")


def _author(address: str) -> str:
    """The author's ``Name <addr>`` in the same header form as Mail.sender (decoded, the
    name quoted when RFC 5322 needs it: ``"Daniel P. Smith" <...>``), so it can go in
    a To: header as it is; ``email.utils.parseaddr`` gives git's name and address."""
    if (m := _NAME_ADDR.match(address)) is not None:  # as git mailinfo reads it: all before <
        name, addr = m.group(1).strip().strip('"'), m.group(2)
    else:
        pairs = email.utils.getaddresses([address])
        if len(pairs) != 1 or "@" not in pairs[0][1]:
            return " ".join(address.split())
        name, addr = pairs[0]
    if "=?" in name:  # an RFC 2047 word in an in-body From:
        try:
            name = str(email.header.make_header(email.header.decode_header(name)))
        except (ValueError, LookupError):
            pass
    return format_address(name, addr)
