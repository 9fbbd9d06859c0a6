"""What a review rule reports: one frozen ``Finding`` per problem or fact, with where it is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One review finding (DESIGN.md, ``xenpatch-review/1``).

    ``patch`` is the patch's number in the series (1-based), or None for a
    finding about the whole series; ``file`` is a repository path and
    ``line`` a line of that file as the patch leaves it (the ``+`` side of
    its hunk), both None when the finding is not about a line."""

    rule: str
    severity: str  # error | warning | info
    patch: int | None
    file: str | None
    line: int | None
    message: str

    def sort_key(self) -> tuple[int, str, int, int, str, str]:
        return (self.patch if self.patch is not None else -1, self.file or "", self.line or 0,
                SEVERITIES.index(self.severity), self.rule, self.message)

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule, "severity": self.severity, "patch": self.patch,
                "file": self.file, "line": self.line, "message": self.message}


def ordered(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """FINDINGS without duplicates, by patch, file, line, then severity."""
    return tuple(sorted(set(findings), key=Finding.sort_key))


def count(findings: Iterable[Finding]) -> dict[str, int]:
    out = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        out[f.severity] += 1
    return out
