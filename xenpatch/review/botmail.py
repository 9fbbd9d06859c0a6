"""The watch bot's outputs for one reviewed series version: the review JSON and the reply mail (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Any

from ..mail.compose import MAIL_POLICY, merge_recipients
from .abireview import ReviewFinding, ReviewResult
from .series import Series

SCHEMA = "xenpatch-review/1"


def series_digest(series: Series, base: str) -> str:
    """What was reviewed: the version, the patches' bytes and the base (a rerun with the same
    digest would review the same thing)."""
    h = hashlib.sha256(f"v{series.version}\0{base}\0".encode())
    for p in series.patches:
        h.update(p.mail.raw)
        h.update(b"\0")
    return h.hexdigest()


def review_json(series: Series, result: ReviewResult, findings: Sequence[ReviewFinding],
                digest: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "input_digest": digest,
        "series": {"subject": series.subject, "version": series.version,
                   "message_id": series.message_id, "patches": len(series.patches),
                   "total": series.total, "missing": list(series.missing),
                   "base": result.base, "base_how": result.base_how},
        "findings": [f.to_json() for f in findings],
        "counts": _counts(findings),
    }


def _counts(findings: Sequence[ReviewFinding]) -> dict[str, int]:
    out = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        out[f.severity] += 1
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary(findings: Sequence[ReviewFinding]) -> str:
    return summary_counts(_counts(findings))


def summary_counts(c: dict[str, int]) -> str:
    return f'{_plural(c["error"], "error")} and {_plural(c["warning"], "warning")}'


def wants_reply(findings: Sequence[ReviewFinding]) -> bool:
    """Only errors and warnings are worth a mail to the list; a clean series gets none."""
    return any(f.severity in ("error", "warning") for f in findings)


def reply_message(series: Series, result: ReviewResult, findings: Sequence[ReviewFinding],
                  digest: str, sender: str, list_address: str, date: datetime) -> EmailMessage:
    """One reply to the cover letter (or the only patch) with every finding, grouped by patch."""
    root = series.cover or series.patches[0].mail
    author = root.sender
    domain = getaddresses([sender])[0][1].rsplit("@", 1)[-1] or "xenpatch.invalid"
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = sender
    msg["To"] = author
    cc = [a for a in merge_recipients([list_address], series.thread_addresses)
          if getaddresses([a])[0][1].lower() not in
          {getaddresses([author])[0][1].lower(), getaddresses([sender])[0][1].lower()}]
    if cc:
        msg["Cc"] = ", ".join(cc)
    subject = root.subject
    msg["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<xenpatch-review.{digest[:24]}@{domain}>"
    msg["In-Reply-To"] = f"<{root.message_id}>"
    refs = [f"<{r}>" for r in root.references] + [f"<{root.message_id}>"]
    msg["References"] = " ".join(dict.fromkeys(refs))
    msg.set_content(reply_body(series, result, findings))
    return msg


def reply_body(series: Series, result: ReviewResult, findings: Sequence[ReviewFinding]) -> str:
    lines = [f"xenpatch found {summary(findings)} in v{series.version} of this series "
             f"({_plural(len(series.patches), 'patch')}) on {result.base[:12]}.", ""]
    subjects = {p.number: p.mail.subject for p in series.patches}
    by_patch: dict[int | None, list[ReviewFinding]] = {}
    for f in findings:
        if f.severity in ("error", "warning"):
            by_patch.setdefault(f.patch, []).append(f)
    for number in sorted(by_patch, key=lambda n: -1 if n is None else n):
        lines.append(subjects.get(number, "The series as a whole") if number else
                     "The series as a whole")
        for f in by_patch[number]:
            where = f"{f.file}:{f.line}: " if f.file and f.line else f"{f.file}: " if f.file else ""
            lines.append(f"  {where}{f.severity} ({f.rule}): {f.message}")
        lines.append("")
    lines += [f"Base: {result.base} (chosen by {result.base_how})",
              f"Reproduce: xenpatch review '<{series.message_id}>' --base {result.base[:12]}",
              "", "This is an automated review by xenpatch watch; it checks the public ABI "
              "(xen/include/public/) only.", "A human reviewer has not seen this mail.", ""]
    return "\n".join(lines)
