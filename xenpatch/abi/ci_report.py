"""Reports for CI: a Markdown merge-request note and GitLab Code Quality JSON, for diff and history.

Pure: takes ``Change`` values (rated by ``interfaces.judge``), returns text.

* Markdown: a summary line, a table per severity (breaking first), the
  long explanations in a collapsed ``<details>`` block, so a merge-request
  note stays short.
* Code Quality (GitLab's "code quality report" format, a bare JSON array):
  one issue per change with ``description``, ``check_name`` (the change's
  kind), ``fingerprint`` (stable: a digest of what the change is, not of
  where its line is), ``severity`` (``info``/``minor``/``major``/``critical``),
  ``location.path`` (the header's path in the repository) and
  ``location.lines.begin``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .diff import SEVERITIES, Change, change_name, count, old_new
from .sources import PUBLIC

# Code Quality severities: a break fails the job (critical), an interface-version
# break is the same; compatible changes are worth a look (minor); info is info.
_CQ_SEVERITY = {"breaking": "critical", "compatible": "minor", "info": "info"}


def summary(changes: Sequence[Change]) -> str:
    c = count(changes)
    n = len(changes)
    return (f"{n} ABI change{'s' if n != 1 else ''}: {c['breaking']} breaking, "
            f"{c['compatible']} compatible, {c['info']} info")


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _tables(changes: Sequence[Change], heading: str = "###") -> list[str]:
    out: list[str] = []
    for severity in SEVERITIES:
        rows = [ch for ch in changes if ch.severity == severity]
        if not rows:
            continue
        out += [f"{heading} {severity} ({len(rows)})", "",
                "| kind | what | change | interface | arches | where |",
                "| --- | --- | --- | --- | --- | --- |"]
        for ch in rows:
            cells = (ch.kind, f"`{change_name(ch)}`", old_new(ch), ch.interface or "",
                     ", ".join(ch.arches), f"`{ch.header}:{ch.line}`")
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    return out


def _details(changes: Sequence[Change]) -> list[str]:
    explained = [ch for ch in changes if ch.message]
    if not explained:
        return []
    out = ["<details><summary>Why each change is rated so "
           f"({len(explained)})</summary>", ""]
    out += [f"* `{change_name(ch)}` ({ch.kind}, {ch.severity}): {ch.message}" for ch in explained]
    out += ["", "</details>", ""]
    return out


def diff_markdown(changes: Sequence[Change], old: str, new: str) -> str:
    """The merge-request note for ``abi diff OLD NEW``."""
    verdict = ":x:" if any(c.severity == "breaking" for c in changes) else ":white_check_mark:"
    out = [f"## ABI drift `{old}` → `{new}`", "", f"{verdict} {summary(changes)}", ""]
    out += _tables(changes)
    out += _details(changes)
    return "\n".join(out)


@dataclass(frozen=True)
class CommitEvents:
    """One commit of a history and the ABI changes it made (against its first parent)."""

    sha: str
    subject: str
    changes: tuple[Change, ...]
    failed: tuple[str, ...] = ()  # "header: error" of headers that did not parse


def history_markdown(commits: Sequence[CommitEvents], rev_range: str) -> str:
    """The note for ``abi history``: a summary, then per commit with events its tables."""
    every = [ch for c in commits for ch in c.changes]
    verdict = ":x:" if any(c.severity == "breaking" for c in every) else ":white_check_mark:"
    out = [f"## ABI history `{rev_range}`", "",
           f"{verdict} {len(commits)} commits touch the public headers; {summary(every)}", ""]
    for c in commits:
        if not c.changes:
            continue
        out += [f"### {c.sha[:12]} {_cell(c.subject)}", "", summary(c.changes), ""]
        out += _tables(c.changes, "####")
    quiet = [c for c in commits if not c.changes]
    if quiet:
        out += [f"<details><summary>{len(quiet)} commits without ABI events</summary>", ""]
        out += [f"* {c.sha[:12]} {c.subject}" for c in quiet]
        out += ["", "</details>", ""]
    out += _details(every)
    return "\n".join(out)


def fingerprint(ch: Change, commit: str | None = None) -> str:
    """A digest of what the change is (kind, name, field, old, new, arches), the same on every
    run and unmoved by lines added above it; COMMIT keeps a history's repeats apart."""
    ident = json.dumps([ch.kind, ch.name, ch.field, repr(ch.old), repr(ch.new),
                        list(ch.arches), ch.header, commit], sort_keys=True)
    return hashlib.sha256(ident.encode()).hexdigest()


def _issue(ch: Change, commit: str | None = None, subject: str | None = None) -> dict[str, Any]:
    where = f" (commit {commit[:12]} {subject})" if commit else ""
    text = f"{ch.severity} {ch.kind}: {change_name(ch)}: {old_new(ch)} [{', '.join(ch.arches)}]"
    if ch.interface:
        text += f", {ch.interface} interface"
    if ch.message:
        text += f": {ch.message}"
    return {"type": "issue", "check_name": f"xenpatch/{ch.kind}",
            "description": text + where, "categories": ["Compatibility"],
            "fingerprint": fingerprint(ch, commit),
            "severity": _CQ_SEVERITY.get(ch.severity, "info"),
            "location": {"path": f"{PUBLIC}/{ch.header}", "lines": {"begin": max(ch.line, 1)}}}


def diff_codeclimate(changes: Sequence[Change]) -> str:
    """GitLab Code Quality JSON of a diff: a bare array of issues."""
    return json.dumps([_issue(ch) for ch in changes], indent=2, sort_keys=True) + "\n"


def history_codeclimate(commits: Sequence[CommitEvents]) -> str:
    return json.dumps([_issue(ch, c.sha, c.subject) for c in commits for ch in c.changes],
                      indent=2, sort_keys=True) + "\n"
