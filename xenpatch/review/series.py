"""A patch series from the mails of a thread: versions, cover letter, patches (pure, no I/O).

The mail and patch parsers live in ``message`` and ``patch``; their names are
exported here too, so ``from xenpatch.review.series import Mail, Patch`` works.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from .message import Mail, looks_like_mail, parse_mail, references_of
from .patch import Patch, SubjectInfo, extract_diff, parse_patch, parse_subject, parse_trailers

__all__ = ["Mail", "Patch", "Series", "SubjectInfo", "assemble", "extract_diff", "looks_like_mail",
           "parse_mail", "parse_patch", "parse_subject", "parse_trailers", "references_of",
           "select_thread", "thread_root"]


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
