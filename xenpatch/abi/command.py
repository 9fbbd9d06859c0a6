"""The ``xenpatch abi`` commands dump and check (argument handling only; diff and history: drift.py).

Each handler returns a ``Result`` for ``cli.py`` to write: the document and
the exit code (DESIGN.md): 0 success; 1 error-level findings (``check``);
errors are raised as XenpatchError (2 input/usage, 3 environment) for
``cli.py`` to report.  Nothing here prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import xentree
from ..config import Config
from ..errors import UsageError
from ..result import Result
from .model import AbiModel
from .sources import HeaderSource


def _source(args: argparse.Namespace, config: Config) -> HeaderSource:
    from . import sources

    headers = getattr(args, "headers", None)
    if headers and getattr(args, "tree", None):
        raise UsageError("--tree and --headers cannot be used together")
    if headers:
        if getattr(args, "rev", None):
            raise UsageError("--rev needs a tree, not --headers")
        return sources.from_headers_dir(Path(headers))
    tree = xentree.configured(config)
    if tree is None:
        raise UsageError("no Xen tree: give --tree DIR or --headers DIR, or set [tree].path")
    return sources.from_tree(tree, getattr(args, "rev", None))


def _dump(source: HeaderSource, config: Config) -> AbiModel:
    from . import api

    return api.dump_configured(source, config)


def dump(args: argparse.Namespace, config: Config) -> Result:
    """``abi dump``: the model as JSON (xenpatch-abi/1) or text."""
    source = _source(args, config)
    if args.format == "text":
        from .report import model_text

        return Result(0, model_text(_dump(source, config)), args.output)
    from . import api

    cache = config.get("abi", "cache")
    return Result(0, api.dump_json(source, tuple(config.get("abi", "arches")),
                                   config.get("abi", "profile"), cpp=config.get("abi", "cpp"),
                                   cache_dir=config.resolve_path(cache) if cache else None,
                                   jobs=config.get("abi", "jobs")), args.output)


def check(args: argparse.Namespace, config: Config) -> Result:
    """``abi check``: collisions inside one snapshot; 1 when any error-level finding."""
    from . import check as rules

    model = _dump(_source(args, config), config)
    findings = rules.check_model(model, config.suppress)
    code = 1 if any(f.severity == "error" for f in findings) else 0
    if args.format == "json":
        return Result.of_json(rules.findings_json(findings), code, args.output)
    return Result(code, rules.findings_text(findings), args.output)
