"""``send``'s pre-flight: the series in SERIES_DIR reviewed against its base by ``review``'s own engine.

``generate`` proves the series it writes; a user may edit the patches after
that, and ``send`` is the last point before the list sees them.  The same
code as ``xenpatch review`` runs (``review.engine.review``: apply in a
scratch clone, ABI diff and check, header compile, tags, style); an
error-level finding stops the send unless ``--force``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from .finding import Finding


@dataclass(frozen=True)
class Preflight:
    """What the pre-flight review found, on which base, and how long it took."""

    findings: tuple[Finding, ...]
    base: str
    base_reason: str
    seconds: float

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def lines(self) -> list[str]:
        """The report: one summary line with the time, then each error and warning."""
        shown = [f for f in self.findings if f.severity in ("error", "warning")]
        errors = sum(f.severity == "error" for f in shown)
        head = (f"pre-flight review on {self.base[:12]} ({self.base_reason}): "
                f"{errors} error{'s' if errors != 1 else ''}, {len(shown) - errors} "
                f"warning{'s' if len(shown) - errors != 1 else ''} in {self.seconds:.1f} s")
        out = [head]
        for f in shown:
            where = ":".join(str(x) for x in (f.file, f.line) if x) or "series"
            patch = f"patch {f.patch}: " if f.patch else ""
            out.append(f"  {f.severity} {f.rule}: {patch}{where}: {f.message}")
        return out

    def to_json(self) -> dict[str, object]:
        return {"base": self.base, "base_reason": self.base_reason,
                "seconds": round(self.seconds, 3),
                "findings": [f.to_json() for f in self.findings]}


def preflight(series_dir: Path, tree: Path, config: Config) -> Preflight:
    """Review the ``git format-patch`` files of SERIES_DIR against TREE (base: the cover
    letter's ``base-commit:``, else ``[tree].base``)."""
    from . import engine, sources
    from .series import assemble
    started = time.monotonic()
    limits = sources.Limits.from_config(config)
    mails = sources.load(str(series_dir), archive=None, message_id=None, limits=limits)
    series = assemble(mails, None, max_patches=limits.max_patches)
    cache = config.get("abi", "cache")
    settings = engine.Settings(arches=tuple(config.get("abi", "arches")),
                               cpp=config.get("abi", "cpp"),
                               cache_dir=config.resolve_path(cache) if cache else None,
                               jobs=config.get("abi", "jobs"), suppress=config.suppress,
                               configured_base=config.get("tree", "base"))
    r = engine.review(series, tree, None, settings)
    return Preflight(r.findings, r.base.sha, r.base.reason, time.monotonic() - started)
