"""A review as text, JSON (``xenpatch-review/1``), Markdown, or reply mails (templates in templates/review/).

Reply mails: one reply to each patch that has findings, In-Reply-To that
patch, quoting only the hunks the findings point at; the findings about
the whole series (a missing patch, anything without a patch) go in a reply
to the cover letter, or, without a cover letter, in the reply to the first
patch.  To the patch's author, Cc the list and everyone already on the
thread.  Dates, Message-IDs, the sender and the command to reproduce come
from the caller (``ReplySettings``), never from the clock here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

import xenpatch

from .. import __version__
from ..errors import EnvironmentFailure
from ..mail.compose import MAIL_POLICY, Outgoing, mbox
from .engine import Review
from .finding import Finding, count
from .quote import Block, comment_lines, reply_blocks
from .series import Mail, Patch

SCHEMA = "xenpatch-review/1"
SUBDIR = "review"


def _template_source(name: str) -> tuple[str, str, Callable[[], bool]] | None:
    """templates/review/NAME of the source checkout, else the installed package data read
    through importlib.resources (a wheel's ``xenpatch/_templates/review/``), else None."""
    checkout = Path(xenpatch.__file__).resolve().parent.parent / "templates" / SUBDIR / name
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8"), str(checkout), lambda: True
    try:
        item = resources.files("xenpatch._templates").joinpath(SUBDIR).joinpath(name)
        return item.read_text(encoding="utf-8"), f"xenpatch/_templates/{SUBDIR}/{name}", lambda: True
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, OSError):
        return None


def _render(template: str, **values: Any) -> str:
    env = jinja2.Environment(loader=jinja2.FunctionLoader(_template_source),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    try:
        return env.get_template(template).render(**values)
    except jinja2.TemplateNotFound as e:
        raise EnvironmentFailure(f"template {SUBDIR}/{template}: not installed with xenpatch") from e


def _counts_text(findings: Sequence[Finding]) -> str:
    c = count(findings)
    parts = [f"{c[s]} {s}{'s' if c[s] != 1 else ''}" for s in ("error", "warning") if c[s]]
    return " and ".join(parts) if parts else "no error or warning"


def review_json(r: Review) -> dict[str, Any]:
    s = r.series
    return {
        "schema": SCHEMA,
        "series": {"subject": s.subject, "version": s.version, "message_id": s.message_id,
                   "patches": s.total, "rfc": s.rfc, "missing": list(s.missing),
                   "applied": list(r.applied), "base": r.base.sha, "base_rev": r.base.rev,
                   "base_chosen_by": r.base.how, "base_reason": r.base.reason,
                   "profiles": list(r.profiles)},
        "findings": [f.to_json() for f in r.findings],
        "summary": count(r.findings),
    }


def _where(f: Finding) -> str:
    where = f"patch {f.patch}" if f.patch is not None else "series"
    if f.file:
        where += f" {f.file}" + (f":{f.line}" if f.line else "")
    return where


def _values(r: Review) -> dict[str, Any]:
    s = r.series
    return {"series": s, "base": r.base, "applied": r.applied, "profiles": r.profiles,
            "summary": _counts_text(r.findings), "counts": count(r.findings),
            "findings": [{"where": _where(f), "f": f} for f in r.findings]}


def review_text(r: Review) -> str:
    return _render("report.txt.j2", **_values(r))


def review_markdown(r: Review) -> str:
    values = _values(r)
    for item in values["findings"]:
        item["message"] = str(item["f"].message).replace("|", "\\|")
    return _render("report.md.j2", **values)


@dataclass(frozen=True)
class ReplySettings:
    sender: str  # "Name <addr>" the replies come from
    date: str  # RFC 2822 Date of the replies
    list_address: str  # the list, always on Cc
    command: str  # the exact command that reproduces this review
    domain: str = "xenpatch.invalid"  # right-hand side of the replies' Message-IDs


def _name(address: str) -> str:
    name, addr = parseaddr(address)
    return name or addr or address


def _reply(mail: Mail, author: str, blocks: Sequence[Block], rest: Sequence[Finding],
           findings: Sequence[Finding], r: Review, rs: ReplySettings, scope: str) -> Outgoing:
    body = _render("reply.txt.j2", summary=f"Automated review of this {scope}: "
                   f"{_counts_text(findings)}.", date=mail.date, author=_name(mail.sender),
                   blocks=blocks, rest=[comment_lines(f) for f in rest],
                   base=r.base.sha, base_reason=r.base.reason, command=rs.command,
                   version=__version__, applied=r.applied, total=r.series.total)
    subject = mail.subject if mail.subject.lower().startswith("re:") else f"Re: {mail.subject}"
    refs = tuple(dict.fromkeys((*mail.references, mail.message_id)))
    digest = hashlib.sha256(f"{mail.message_id}\0{rs.date}\0{body}".encode()).hexdigest()[:20]
    message_id = f"<xenpatch-review.{digest}@{rs.domain}>"
    me = parseaddr(rs.sender)[1].lower()
    to = author
    skip = {me, parseaddr(to)[1].lower()}
    cc: list[str] = []
    for addr in (rs.list_address, *r.series.thread_addresses):
        key = parseaddr(addr)[1].lower()
        if key and key not in skip:
            skip.add(key)
            cc.append(addr)
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = rs.sender
    msg["To"] = to
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = rs.date
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = f"<{mail.message_id}>"
    msg["References"] = " ".join(f"<{m}>" for m in refs)
    msg["X-Mailer"] = f"xenpatch {__version__}"
    msg.set_content(body, charset="utf-8", cte="8bit" if not body.isascii() else "7bit")
    return Outgoing(name=f"re-{mail.message_id}", message_id=message_id, subject=subject,
                    to=(to,), cc=tuple(cc), in_reply_to=f"<{mail.message_id}>",
                    references=tuple(f"<{m}>" for m in refs), message=msg)


def replies(r: Review, rs: ReplySettings) -> tuple[Outgoing, ...]:
    """The reply mails of review R (none when it found nothing worth a mail)."""
    present = {p.number: p for p in r.series.patches}
    wide = [f for f in r.findings if f.patch not in present and f.severity != "info"]
    out: list[Outgoing] = []
    cover = r.series.cover
    if wide and cover is not None:
        out.append(_reply(cover, cover.sender, (), wide, wide, r, rs, "series"))
        wide = []
    for number, patch in sorted(present.items()):
        mine = [f for f in r.findings if f.patch == number]
        if not [f for f in mine if f.severity != "info"] and not wide:
            continue
        blocks, rest = reply_blocks(r.diffs.get(number, ()), mine)
        out.append(_reply(patch.mail, patch.author, blocks, [*rest, *wide], [*mine, *wide], r, rs,
                          "patch"))
        wide = []
    return tuple(out)


def replies_mbox(messages: Sequence[Outgoing]) -> str:
    return mbox(messages).decode("utf-8", "replace")


def recipients(out: Outgoing) -> tuple[str, ...]:
    return tuple(a for _, a in getaddresses(list(out.to + out.cc)))


def first_patch(r: Review) -> Patch | None:
    return r.series.patches[0] if r.series.patches else None
