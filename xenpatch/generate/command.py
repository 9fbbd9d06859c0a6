"""`xenpatch generate`: turn a change description into a proven patch series.

Exit codes: 0 the series was written; 1 a self-check failed (nothing
written); 2 a bad change description, tree, base, name or bit; 3 git, cpp
or a compiler missing.

The tree is ``--tree``, else ``[tree].path``, else the Xen 4.17.5 tree that
``scripts/fetch_xen.py xen-4.17`` fetches from Debian (cached in
``~/.cache/xenpatch``).  Dates come from ``[series].date``, else
``$SOURCE_DATE_EPOCH``, else the clock, so reruns can be byte-identical.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import xentree
from ..config import Config, series_date
from .spec import load_change


def git_date(value: str, env: Mapping[str, str] | None = None) -> str:
    """``config.series_date`` as git's ``@<epoch> <offset>``."""
    when = series_date(value, os.environ if env is None else env)
    off = int(when.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
    sign = "+" if off >= 0 else "-"
    return f"@{int(when.timestamp())} {sign}{abs(off) // 60:02d}{abs(off) % 60:02d}"


def identity(config: Config, tree: Path) -> tuple[str, str]:
    """The author of the commits: ``xenpatch.identity.resolve`` with git's config read in TREE."""
    from .. import gitrepo
    from .. import identity as ident
    who = ident.resolve(config, gitrepo.config_values(tree))
    return who.name, who.email


def options(config: Config, tree: Path, out: Path, build_check: bool) -> Any:
    from .series import Options
    templates = config.get("series", "templates")
    cache = config.get("abi", "cache")
    name, mail = identity(config, tree)
    return Options(
        tree=tree, base=config.get("tree", "base"), out=out,
        version=config.get("series", "version"), rfc=config.get("series", "rfc"),
        signoff=config.get("series", "signoff"), name=name, email=mail,
        date=git_date(config.get("series", "date")),
        changelog=config.get("series", "changelog"),
        templates=config.resolve_path(templates) if templates else None,
        build_check=build_check, arches=tuple(config.get("abi", "arches")),
        profile=config.get("abi", "profile"), cpp=config.get("abi", "cpp"),
        cache_dir=config.resolve_path(cache) if cache else None,
        jobs=config.get("abi", "jobs"), suppress=tuple(config.suppress))


MAX_DETAILS = 12


def summary_text(result: Any) -> str:
    lines = [f"xenpatch generate {result.change}: bit {result.bit}, branch {result.branch}, "
             f"base {result.base[:12]}"]
    for c in result.checks:
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.summary}")
        if not c.ok:
            lines += [f"         {d}" for d in c.details[:MAX_DETAILS]]
            if len(c.details) > MAX_DETAILS:
                lines.append(f"         ... and {len(c.details) - MAX_DETAILS} more "
                             "(--format json lists them all)")
    lines += [f"  note {n}" for n in result.notes]
    if result.files:
        lines.append(f"wrote {len(result.files)} files to {result.files[0].parent}:")
        lines += [f"  {f.name}" for f in result.files]
    else:
        lines.append("nothing written")
    return "\n".join(lines) + "\n"


def summary_json(result: Any) -> dict[str, Any]:
    return {
        "schema": "xenpatch-generate/1", "change": result.change, "branch": result.branch,
        "base": result.base, "bit": result.bit, "ok": result.ok,
        "checks": [{"name": c.name, "ok": c.ok, "summary": c.summary, "details": list(c.details)}
                   for c in result.checks],
        "subjects": list(result.subjects), "files": [str(f) for f in result.files],
        "notes": list(result.notes),
    }


def generate(args: argparse.Namespace, config: Config) -> int:
    """The ``generate`` command (see the module docstring for exit codes)."""
    from ..cli import emit, emit_json
    from . import buildcheck
    from .series import generate_series, open_tree, require_ok

    key = args.change or config.get("series", "default_change")
    spec = load_change(config.changes, key)
    tree = xentree.resolve(config)
    out = config.resolve_path(config.get("series", "out"))
    open_tree(tree)  # a missing, foreign or dirty tree is named before anything else
    opts = options(config, tree, out, bool(getattr(args, "build_check", False)))
    result = generate_series(spec, opts, build=buildcheck.build_check if opts.build_check else None)
    if getattr(args, "format", "text") == "json":
        emit_json(summary_json(result))
    elif not getattr(args, "quiet", False) or not result.ok:
        emit(summary_text(result))
    require_ok(result)
    return 0
