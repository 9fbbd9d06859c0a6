"""`xenpatch generate`: turn a change description into a proven patch series.

Exit codes: 0 the series was written; 1 a self-check failed (nothing
written); 2 a bad change description, tree, base, name or bit; 3 git, cpp
or a compiler missing.

The tree is ``--tree``, else ``[tree].path``, else the Xen 4.17.5 tree that
``xenpatch fetch-xen xen-4.17`` fetches from Debian (cached in
``~/.cache/xenpatch``).  Dates come from ``[series].date``, else
``$SOURCE_DATE_EPOCH``, else the clock, so reruns can be byte-identical.

``--version N`` applies the change's ``[changes.NAME.v2]`` ... ``vN`` tables
(spec.py); ``--in-reply-to`` (or the table's ``in_reply_to``) threads every
file to the previous version's cover letter, as ``git format-patch
--in-reply-to`` does; ``send --in-reply-to`` the same Message-ID mails it so.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import xentree
from ..config import Config, series_date
from ..errors import FindingsError
from ..mail.compose import check_message_id
from ..result import Result
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
    if result.in_reply_to:
        lines.append(f"  threaded: every file replies to {result.in_reply_to} (send it with "
                     f"--in-reply-to {result.in_reply_to})")
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
        "notes": list(result.notes), "in_reply_to": result.in_reply_to,
    }


def generate(args: argparse.Namespace, config: Config) -> Result:
    """The ``generate`` command (see the module docstring for exit codes)."""
    from . import buildcheck
    from .series import check_out, generate_series, open_tree

    key = args.change or config.get("series", "default_change")
    version = config.get("series", "version")
    spec = load_change(config.changes, key, version,
                       fallback=bool(config.get("series", "changelog")))
    out = config.resolve_path(config.get("series", "out"))
    check_out(out)  # before any work (a fetch, a model, a build check)
    tree = xentree.resolve(config)
    open_tree(tree)  # a missing, foreign or dirty tree is named before anything else
    opts = options(config, tree, out, bool(getattr(args, "build_check", False)))
    reply = getattr(args, "in_reply_to", None)
    if reply:
        opts = replace(opts, in_reply_to=check_message_id(reply))
    build = buildcheck.checker(spec) if opts.build_check else None
    result = generate_series(spec, opts, build=build)
    failed = [c.name for c in result.checks if not c.ok]
    # Exit 1 (FindingsError's code) with the summary: what failed, and why.
    code = FindingsError.exit_code if failed else 0
    messages = (f"xenpatch: self-check failed ({', '.join(failed)}): nothing written",) \
        if failed else ()
    if getattr(args, "format", "text") == "json":
        return Result.of_json(summary_json(result), code, messages=messages)
    if not getattr(args, "quiet", False) or failed:
        return Result(code, summary_text(result), messages=messages)
    return Result(code, messages=messages)
