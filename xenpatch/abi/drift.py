"""The ``abi diff`` and ``abi history`` commands with Xen's interface rules (argument handling only).

Both return a ``Result`` (exit 1 when a change is breaking, DESIGN.md) in
``text``, ``json``, ``markdown`` or ``codeclimate``; errors are raised as
XenpatchError for ``cli.py``.  The interface rules (``interfaces.py``) need
the headers of both sides in three views, so they apply when OLD and NEW are
trees or revisions in the ``tools`` view; with a dump file they are skipped,
and a message says so.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import progress, xentree
from ..config import Config
from ..errors import UsageError
from ..result import Result
from .model import AbiModel
from .sources import HeaderSource


def _dumper(config: Config) -> Callable[..., AbiModel]:
    from . import api

    def dump(source: HeaderSource, profile: str, roots: frozenset[str] | None = None) -> AbiModel:
        return api.dump_configured(source, config, profile, roots)
    return dump


def _starter(config: Config) -> Callable[..., None]:
    from . import api

    def start(source: HeaderSource, profile: str, roots: frozenset[str] | None = None,
              against: HeaderSource | None = None) -> None:
        api.start_configured(source, config, profile, roots, against)
    return start


_UNREAD = object()  # _rated's RELEASE when the release tag is still to be found


def _rated(args: argparse.Namespace, config: Config, tree: Path | None, old_src: HeaderSource,
           new_src: HeaderSource, load: Callable[..., AbiModel], release: Any = _UNREAD) -> Any:
    """The changes OLD -> NEW rated by the interface rules, and messages; a diff rated before
    (same headers on both sides, same release tag, code, cpp and arches) comes from the
    event store without loading a model.  RELEASE: ``rating.release_tag`` of NEW, when
    found already (``api.read_ahead``)."""
    from . import api, rating
    from . import modelcache as cache
    from .ci_report import CommitEvents
    from .diff import diff_models

    messages: tuple[str, ...] = ()
    if release is _UNREAD:
        release = rating.release_tag(tree, new_src.rev) if tree and new_src.rev else None
    found: tuple[str, str] | None = release
    if found is None:
        messages += (f"no RELEASE-* tag for {args.new}: interface versions are compared "
                     f"with {args.old}",)
    cpp = config.get("abi", "cpp")
    parts = (cache.Key.of(old_src, "tools", cpp).digest, cache.Key.of(new_src, "tools", cpp).digest,
             *(found or ("", "")))
    store = _event_store(config)
    known = store.get("diff", *parts)
    if known is not None:
        return known.changes, messages
    start = _starter(config)
    api.write_texts_later()  # the models' JSON for the cache while this process waits
    start(old_src, "tools")  # both sides at once: the workers go from one to the other
    start(new_src, "tools", against=old_src)  # the workers diff their arches too
    api.write_passes_soon()  # then write their passes while this process finishes its own
    old_tools, new_tools = load(old_src, "tools"), load(new_src, "tools")
    api.write_passes_soon()  # and this process its own, during the guest views
    changes = rating.rate(diff_models(old_tools, new_tools), tree, old_src, new_src,
                          old_tools, new_tools, load, (args.old, args.new), found, start)
    store.put(CommitEvents("", "", changes), "diff", *parts)
    return changes, messages


def diff(args: argparse.Namespace, config: Config) -> Result:
    """``abi diff OLD NEW``: drift between two snapshots, rated by the interface rules."""
    from . import ci_report, sources
    from . import diff as abidiff

    tree = xentree.configured(config)
    load = _dumper(config)
    profile = config.get("abi", "profile")
    specs = (args.old, args.new)
    ahead = None
    if tree is not None and profile == "tools" and all(map(sources.is_revision, specs)):
        from . import api

        ahead = api.read_ahead(tree, specs, config)  # two revisions: read in a process of their own
    release: Any = _UNREAD
    if ahead is not None:
        read, release = ahead()
        found: list[HeaderSource | AbiModel] = list(read)
    else:
        found = [sources.from_spec(s, tree) for s in specs]
    messages: tuple[str, ...] = ()
    old_src, new_src = found
    if isinstance(old_src, HeaderSource) and isinstance(new_src, HeaderSource) \
            and profile == "tools":
        changes, messages = _rated(args, config, tree, old_src, new_src, load, release)
    else:
        models = [f if isinstance(f, AbiModel) else load(f, profile) for f in found]
        changes = abidiff.diff_models(models[0], models[1])
        messages += ("interface rules skipped: they need the headers of both sides "
                     "(not a dump file) in the tools profile",)
    code = 1 if abidiff.has_breaking(changes) else 0
    if args.format == "json":
        return Result.of_json(abidiff.changes_json(changes, args.old, args.new), code,
                              args.output, messages)
    if args.format == "markdown":
        text = ci_report.diff_markdown(changes, args.old, args.new)
    elif args.format == "codeclimate":
        text = ci_report.diff_codeclimate(changes)
    else:
        text = abidiff.changes_text(changes)
    return Result(code, text, args.output, messages)


def _event_store(config: Config) -> Any:
    from . import modelcache as cache
    from .history import EventStore

    where = config.get("abi", "cache")
    salt = "\n".join((cache.code_identity(with_rules=True), cache.cpp_identity(config.get("abi", "cpp")),
                      ",".join(config.get("abi", "arches"))))
    return EventStore(config.resolve_path(where) if where else cache.default_dir(), salt)


def history(args: argparse.Namespace, config: Config) -> Result:
    """``abi history [REV_RANGE]``: the rated ABI events of each commit touching public/."""
    from .. import gitrepo
    from . import ci_report, sources
    from . import history as hist

    tree = xentree.configured(config)
    if tree is None:
        raise UsageError("no Xen tree: give --tree DIR or set [tree].path")
    repo = gitrepo.open_repo(tree)
    rev_range = args.range or hist.default_range(repo)
    if ".." not in rev_range:
        rev_range = f"{rev_range}..HEAD"
    load = _dumper(config)

    snapshots: dict[str, HeaderSource] = {}  # read once for the views of a commit

    def snapshot(sha: str) -> HeaderSource:
        if sha not in snapshots:
            if len(snapshots) > 4:
                snapshots.pop(next(iter(snapshots)))
            snapshots[sha] = sources.from_tree(tree, sha)
        return snapshots[sha]

    def by_sha(sha: str, profile: str, roots: frozenset[str] | None = None) -> AbiModel:
        return load(snapshot(sha), profile, roots)

    begin = _starter(config)

    def start(sha: str, profile: str, roots: frozenset[str] | None = None) -> None:
        begin(snapshot(sha), profile, roots)

    reporter = progress.current()  # cli installs a bar on a terminal, nothing under -q

    def step(done: int, total: int, label: str) -> None:
        reporter.bar(f"abi history {done}/{total} {label[:40]:40}", done / total if total else 1.0)

    commits = hist.history(repo, rev_range, by_sha, step, _event_store(config), start)
    code = 1 if any(ch.severity == "breaking" for c in commits for ch in c.changes) else 0
    if args.format == "json":
        return Result.of_json(hist.history_json(commits, rev_range), code, args.output)
    if args.format == "markdown":
        text = ci_report.history_markdown(commits, rev_range)
    elif args.format == "codeclimate":
        text = ci_report.history_codeclimate(commits)
    else:
        text = hist.history_text(commits, rev_range)
    return Result(code, text, args.output)
