"""``abi history``: the ABI events of every commit of a range that touches the public headers.

Each commit is compared with its first parent in the ``tools`` view and
rated by ``interfaces.judge`` (the other views loaded as the rules need
them).  Snapshots are read from git objects (GitPython), never checked out;
a commit's model is its successor's "before", so each snapshot is dumped
once per view, and ``api.dump``'s caches (whole models by content, parsed
pieces by content) make an overlapping range parse nothing it has seen; a
commit rated before is taken from ``EventStore`` without loading a model (a
rerun).  Each dump spreads its arches over the cores (``api.dump``'s jobs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import atomic
from ..errors import InputError
from .ci_report import CommitEvents
from .diff import Change, count, diff_models
from .interfaces import Release, Roots, Side, judge, release_base
from .model import AbiModel
from .sources import PUBLIC

SCHEMA = "xenpatch-abihistory/1"
# (sha, profile, roots) -> model (``api.dump``'s ROOTS: None for the whole tree); a
# HeaderSource is read from the commit by the loader.
Loader = Callable[[str, str, Roots], AbiModel]
Starter = Callable[[str, str, Roots], None]  # (sha, profile, roots): ``api.start``
Progress = Callable[[int, int, str], None]


def default_range(repo: Any) -> str:
    """The last ``RELEASE-*`` tag before HEAD, ``..HEAD`` (DESIGN.md)."""
    from .. import gitrepo  # GitPython only where a repository is read: not for EventStore

    tags = gitrepo.tag_names(repo, "RELEASE-")
    head = gitrepo.resolve(repo, "HEAD").hexsha
    tag = release_base(gitrepo.read_file(repo, head, "xen/Makefile"), tags,
                       lambda: gitrepo.nearest_tag(repo, head, "RELEASE-*"))
    if tag is None:
        raise InputError(f"{repo.git_dir}: no RELEASE-* tag to start the history from; "
                         "give a range (A..B)")
    return f"{tag}..HEAD"


class _Releases:
    """The release tag each commit's development cycle counts from, and its tools model."""

    def __init__(self, repo: Any, load: Loader) -> None:
        from .. import gitrepo

        self.repo, self.load = repo, load
        self.tags = gitrepo.tag_names(repo, "RELEASE-")
        self._models: dict[str, Release | None] = {}

    def tag(self, sha: str) -> str | None:
        from .. import gitrepo

        return release_base(gitrepo.read_file(self.repo, sha, "xen/Makefile"), self.tags,
                            lambda: gitrepo.nearest_tag(self.repo, sha, "RELEASE-*"))

    def of(self, tag: str | None) -> Release | None:
        if tag is None:
            return None
        if tag not in self._models:
            from .. import gitrepo

            self._models[tag] = Release(tag, self.load(gitrepo.resolve(self.repo, tag).hexsha,
                                                       "tools", None))
        return self._models[tag]


class EventStore:
    """A commit's rated events by (SALT, parent, commit, release tag): git's hashes name the
    headers' content, SALT the code, cpp and arches that rated them (one JSON file each
    under DIRECTORY; a file that cannot be read or written is a miss).  The MAX_EVENTS
    used last are kept (a read touches its file), the others removed when a command first
    writes one."""

    # A file is a few kB; 4096 is the histories of about ten release cycles.
    MAX_EVENTS = 4096

    def __init__(self, directory: Path | None, salt: str) -> None:
        self.directory, self.salt = directory, salt
        self._pruned = False

    def _path(self, *parts: str) -> Path | None:
        if self.directory is None:
            return None
        digest = hashlib.sha256("\0".join((self.salt, *parts)).encode()).hexdigest()
        return self.directory / "history" / f"{digest}.json"

    def get(self, *parts: str) -> CommitEvents | None:
        path = self._path(*parts)
        try:
            if path is None:
                return None
            found = _events_from_json(json.loads(path.read_text()))
            os.utime(path)
            return found
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def prune(self) -> int:
        """Remove all but the MAX_EVENTS files used last; the number removed."""
        if self.directory is None:
            return 0
        from .modelcache import keep_newest

        return keep_newest((self.directory / "history").glob("*.json"), self.MAX_EVENTS)

    def put(self, events: CommitEvents, *parts: str) -> None:
        path = self._path(*parts)
        if path is None:
            return
        if not atomic.write_cache(path, json.dumps(_events_json(events), sort_keys=True)):
            return
        if not self._pruned:  # once per command: a history writes one file per commit
            self._pruned = True
            self.prune()


def _events_json(c: CommitEvents) -> dict[str, Any]:
    return {"commit": c.sha, "subject": c.subject, "failed": list(c.failed),
            "changes": [dict(dataclasses.asdict(ch), arches=list(ch.arches)) for ch in c.changes]}


def _events_from_json(d: dict[str, Any]) -> CommitEvents:
    changes = tuple(Change(**dict(ch, arches=tuple(ch["arches"]))) for ch in d["changes"])
    return CommitEvents(d["commit"], d["subject"], changes, tuple(d["failed"]))


def history(repo: Any, rev_range: str, load: Loader, progress: Progress | None = None,
            store: EventStore | None = None, start: Starter | None = None
            ) -> list[CommitEvents]:
    """The rated ABI changes of every commit of REV_RANGE touching public/, oldest first;
    commits STORE has rated before are not dumped again.  START(sha, profile, roots):
    begins a LOAD (``api.start``), so that the guest views of a commit and its parent
    are done together."""
    from .. import gitrepo

    commits = gitrepo.commits_touching(repo, rev_range, PUBLIC)
    releases = _Releases(repo, load)
    store = store or EventStore(None, "")
    out: list[CommitEvents] = []
    before: Side | None = None
    for i, (sha, parent, subject) in enumerate(commits):
        if progress:
            progress(i, len(commits), f"{sha[:12]} {subject}")
        if parent is None:
            out.append(CommitEvents(sha, subject, ()))
            continue
        tag = releases.tag(sha)
        tag_sha = gitrepo.resolve(repo, tag).hexsha if tag else ""
        known = store.get(parent, sha, tag or "", tag_sha)
        if known is not None:
            out.append(known)
            continue
        now = _side(load, sha, start)
        then = before if before is not None and before.label == parent \
            else _side(load, parent, start)
        changes = diff_models(then.model("tools"), now.model("tools"))
        rated = judge(changes, then, now, releases.of(tag))
        new_failures = {f.header: f.error for a in now.model("tools").arches for f in a.failed}
        old_failures = {f.header for a in then.model("tools").arches for f in a.failed}
        failed = tuple(f"{h}: {e}" for h, e in sorted(new_failures.items()) if h not in old_failures)
        out.append(CommitEvents(sha, subject, rated, failed))
        store.put(out[-1], parent, sha, tag or "", tag_sha)
        before = now
    if progress:
        progress(len(commits), len(commits), "done")
    return out


def _side(load: Loader, sha: str, start: Starter | None = None) -> Side:
    def begin(profile: str, roots: Roots) -> None:
        assert start is not None
        start(sha, profile, roots)
    return Side(lambda profile, roots: load(sha, profile, roots), sha,
                begin=None if start is None else begin)


def history_json(commits: Sequence[CommitEvents], rev_range: str) -> dict[str, Any]:
    from .diff import changes_json

    every = [ch for c in commits for ch in c.changes]
    return {"schema": SCHEMA, "range": rev_range, "summary": count(every),
            "commits": [{"commit": c.sha, "subject": c.subject, "failed": list(c.failed),
                         "summary": count(c.changes),
                         "changes": changes_json(c.changes, "", "")["changes"]}
                        for c in commits]}


def _events(changes: Sequence[Change]) -> list[str]:
    lines = []
    for ch in changes:
        what = f"{ch.name}.{ch.field}" if ch.field else ch.name
        where = f", {ch.interface}" if ch.interface else ""
        lines.append(f"    {ch.severity}: {ch.kind}: {what} [{','.join(ch.arches)}{where}] "
                     f"{ch.header}:{ch.line}")
        if ch.message and (ch.severity == "breaking"
                           or ch.kind in ("interface-version", "macro-alias-removed")):
            lines.append(f"        {ch.message}")
    return lines


def history_text(commits: Sequence[CommitEvents], rev_range: str) -> str:
    """Per commit: hash, subject, a summary and one line per event."""
    out = [f"ABI history of {rev_range}: {len(commits)} commits touch {PUBLIC}"]
    for c in commits:
        counts = count(c.changes)
        tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no ABI events"
        out.append(f"{c.sha[:12]} {c.subject}: {tally}")
        out.extend(f"    failed: {f}" for f in c.failed)
        out.extend(_events(c.changes))
    every = [ch for c in commits for ch in c.changes]
    total = count(every)
    out.append(f"{len(every)} events: " + ", ".join(f"{n} {s}" for s, n in total.items()))
    return "\n".join(out) + "\n"
