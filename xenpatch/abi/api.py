"""The ABI engine's entry point: ``dump`` a HeaderSource into an AbiModel, per arch, cached.

Per arch (``pipeline.run``; up to ``jobs`` groups of arches, one done here
and the others in worker processes kept for the rest of the command, the
arches of one family in the same group so that they share parsed pieces,
as do the later dumps of the same process): stage the headers in a private
directory (once per group), classify them (applicable, not applicable,
unsafe), run cpp over all applicable ones as one translation unit, parse, lay
out the types, evaluate the macros (``macros.evaluate_macros``) and group the
families (``families.group_families``).  A header that cpp or the parser
rejects is recorded as failed and the rest is done again without it (the
headers cpp rejected last time are put last, and when cpp rejects exactly
those, its output before them is taken: one run, ``c.fast``).  Each
arch's result is cached (``modelcache``), keyed by the headers' content, and so
is what each piece of preprocessed text parsed to (``segments``); a text of the
same shape as an earlier pass's takes that pass's declarations (``c.reuse``).  ``dump_json``
is ``dump``'s document without the model in between (``c.fast``, which holds
the speed tricks and says what each buys).  ``start`` begins a dump: what goes to
the workers is sent at once, so that a command needing two (both sides of a diff)
has the workers go from one to the other while this process does its part of each.

Not applicable (a general rule, documented in ``arch.applies_to``): a header
whose path names another architecture, and, for the guest profiles, a
header that stops with ``#error`` there but preprocesses in the tools
profile (``domctl.h``/``sysctl.h``: "intended for use by node control tools
only").
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .arch import BY_NAME
from .model import ARCHES, PROFILES, AbiModel, ArchModel, Source
from .sources import HeaderSource

if TYPE_CHECKING:
    from ..config import Config
    from .c import pipeline
    from .c.parse import SegmentParser
    from .c.reuse import PassStore
    from .modelcache import Key

# The arch models this process dumped or loaded last, by key and arch: a command that
# asks for a snapshot again (the release tag of ``abi diff RELEASE-x HEAD`` is its old
# side) gets it without reading it back from the cache's JSON (0.1 s for 4 arches).
_RECENT: dict[tuple[str, str], ArchModel] = {}
MAX_RECENT = 16


def _check(arches: Sequence[str], profile: str) -> None:
    bad = [a for a in arches if a not in ARCHES]
    if bad or profile not in PROFILES:
        raise UsageError(f"unknown arch or profile: {(bad or [profile])[0]!r}")


def dump_configured(source: HeaderSource, config: Config, profile: str | None = None,
                    roots: Collection[str] | None = None) -> AbiModel:
    """``dump`` with the arches, cpp, cache and jobs of CONFIG (``[abi]``), in PROFILE
    (default: ``[abi].profile``): what every command that dumps asks for."""
    cache = config.get("abi", "cache")
    return dump(source, tuple(config.get("abi", "arches")), profile or config.get("abi", "profile"),
                cpp=config.get("abi", "cpp"),
                cache_dir=config.resolve_path(cache) if cache else None,
                jobs=config.get("abi", "jobs"), roots=roots)


def start_configured(source: HeaderSource, config: Config, profile: str | None = None,
                     roots: Collection[str] | None = None,
                     against: HeaderSource | None = None) -> None:
    """``start`` with the settings of CONFIG, as ``dump_configured``."""
    cache = config.get("abi", "cache")
    start(source, tuple(config.get("abi", "arches")), profile or config.get("abi", "profile"),
          cpp=config.get("abi", "cpp"), cache_dir=config.resolve_path(cache) if cache else None,
          jobs=config.get("abi", "jobs"), roots=roots, against=against)


def start(source: HeaderSource, arches: Sequence[str] = ARCHES, profile: str = "tools", *,
          cpp: str = "cpp", cache_dir: Path | None = None, jobs: int = 0,
          roots: Collection[str] | None = None, against: HeaderSource | None = None) -> None:
    """Begin ``dump`` with the same arguments: the arches that go to worker processes are
    sent to them now, and that dump, when it comes, does the rest.  A command that needs
    two dumps (both sides of a diff, a view of each) starts both, then dumps both: each
    worker goes from the first to the second while this process does its own arches of
    the first, and no one waits for the other in between.  A start no dump follows costs
    the workers' time and nothing else.

    AGAINST: the other side of the diff to come (started before, same arguments): a
    worker that made both sides' models of an arch compares them too (``diff.diff_arch``)
    and sends the changes with its models, so that ``diff.diff_models`` in this process
    has only its own arches to compare (``diff.remember``), while the worker would
    otherwise wait for it."""
    _check(arches, profile)
    from . import modelcache

    roots = None if roots is None else tuple(sorted(set(roots)))
    key = modelcache.Key.of(source, profile, cpp, roots)
    arches = tuple(dict.fromkeys(arches))
    started = (key.digest, arches, cpp, cache_dir, jobs)
    if started in _STARTED:
        return
    todo = [a for a in arches
            if (key.digest, a) not in _RECENT and not key.path(cache_dir or modelcache.default_dir(),
                                                                a).is_file()]
    if todo:
        other = None if against is None else \
            modelcache.Key.of(against, profile, cpp, roots).digest
        _STARTED[started] = _launch(source, todo, profile, cpp, cache_dir, jobs, True, roots,
                                    key, other)
        while len(_STARTED) > MAX_STARTED:
            del _STARTED[next(iter(_STARTED))]


def dump(source: HeaderSource, arches: Sequence[str] = ARCHES, profile: str = "tools", *,
         cpp: str = "cpp", cache_dir: Path | None = None, jobs: int = 0,
         roots: Collection[str] | None = None) -> AbiModel:
    """The ABI model of SOURCE's public headers on ARCHES in PROFILE.

    ROOTS: only these headers, with what they need to be read as in the whole tree
    (``preprocess.with_includers``: xen.h and the headers that include them), go into
    the translation unit, the others are only there to be included: a partial model,
    for the interface rules' guest views of the headers a diff touched (its
    ``headers`` are those that were read; it groups no ``families``, which those rules
    never read)."""
    _check(arches, profile)
    from . import modelcache

    roots = None if roots is None else tuple(sorted(set(roots)))
    key = modelcache.Key.of(source, profile, cpp, roots)
    models: dict[str, ArchModel] = {}
    for arch in dict.fromkeys(arches):
        hit = _RECENT.pop((key.digest, arch), None) or modelcache.load(cache_dir, key, arch)
        if hit is not None:
            models[arch] = hit
    todo = [a for a in dict.fromkeys(arches) if a not in models]
    started = _STARTED.pop((key.digest, tuple(dict.fromkeys(arches)), cpp, cache_dir, jobs), None)
    for arch, model, _ in _compute(source, todo, profile, cpp, cache_dir, jobs, key, True, roots,
                                   started):
        assert model is not None
        models[arch] = model
    for arch, model in models.items():  # the most recent last
        _RECENT[(key.digest, arch)] = model
    while len(_RECENT) > MAX_RECENT:
        del _RECENT[next(iter(_RECENT))]
    return AbiModel(Source(source.description, source.rev, profile),
                    tuple(models[a] for a in arches))


def dump_json(source: HeaderSource, arches: Sequence[str] = ARCHES, profile: str = "tools", *,
              cpp: str = "cpp", cache_dir: Path | None = None, jobs: int = 0) -> str:
    """The JSON document of ``dump(...)`` (compact; ``AbiModel.dumps`` indents it),
    assembled from each arch's JSON text (the cache's, or the workers'): the model
    itself is never built here."""
    _check(arches, profile)
    from . import modelcache

    key = modelcache.Key.of(source, profile, cpp)
    texts = {a: modelcache.load_text(cache_dir, key, a) for a in dict.fromkeys(arches)}
    todo = [a for a, t in texts.items() if t is None]
    for arch, _, text in _compute(source, todo, profile, cpp, cache_dir, jobs, key, False):
        texts[arch] = text
    return modelcache.document_text(Source(source.description, source.rev, profile),
                                    {a: t for a, t in texts.items() if t is not None})


@dataclass(frozen=True)
class _Launched:
    """A dump under way (``_launch``): the arches it does, the workers' futures, and the
    group this process does itself (OWN: how, for ``_work_ahead``; AHEAD: what it gave,
    once done so)."""

    todo: tuple[str, ...]
    want_models: bool
    futures: tuple[Future[str], ...]  # the name of each one's results (``_remote``)
    here: tuple[str, ...]
    own: Callable[[], list[tuple[str, ArchModel | None, str]]]
    ahead: list[Any] = field(default_factory=list, compare=False)  # [(results, error)]

    def own_part(self) -> list[tuple[str, ArchModel | None, str]]:
        """This process's part: as ``_work_ahead`` did it (or the error it met), else now."""
        if self.ahead:
            results, error = self.ahead.pop()
            if error is not None:
                raise error
            return list(results)
        return self.own() if self.here else []


# The dumps ``start`` began, by key, arches, cpp, cache and jobs: the next ``dump`` of one
# takes its futures instead of sending the work again.
_STARTED: dict[tuple[str, tuple[str, ...], str, Path | None, int], _Launched] = {}
MAX_STARTED = 8


def _launch(source: HeaderSource, todo: Sequence[str], profile: str, cpp: str,
            cache_dir: Path | None, jobs: int, want_models: bool,
            roots: Sequence[str] | None, key: Key, against: str | None = None) -> _Launched:
    """Send the groups of TODO but the last to the workers (in worker processes when that
    helps); the last group is done here while they do theirs: one process fewer to
    start, and its models need not be pickled back.  When this process writes its
    models' JSON later (``write_texts_later``), so do the workers theirs (KEY: where).
    AGAINST: the key digest of the models the workers compare theirs with (``start``)."""
    groups = _groups(todo, jobs or os.cpu_count() or 1)
    futures: tuple[Future[str], ...] = ()
    if len(groups) > 1:
        sent = _sent(source.files)
        later = key if want_models and _DEFERRING else None
        futures = tuple(_worker(g).submit(_remote, sent, g, profile, cpp, want_models,
                                          cache_dir, roots, later, key.digest, against)
                        for g in groups[:-1])
    here = tuple(groups[-1]) if groups else ()

    def own() -> list[tuple[str, ArchModel | None, str]]:
        return arch_models(source.files, here, profile, cpp, want_models, cache_dir, None,
                           roots, texts=not (want_models and _DEFERRING))
    return _Launched(tuple(todo), want_models, futures, here, own)


def _compute(source: HeaderSource, todo: Sequence[str], profile: str, cpp: str,
             cache_dir: Path | None, jobs: int, key: Key, want_models: bool,
             roots: Sequence[str] | None = None, started: _Launched | None = None
             ) -> list[tuple[str, ArchModel | None, str]]:
    """Run the pipeline for TODO (STARTED: as ``start`` launched it, when it launched the
    same) and cache the results: (arch, model or None, the model's JSON text)."""
    from . import modelcache

    run = started if started is not None and set(started.todo) == set(todo) \
        and started.want_models == want_models \
        else _launch(source, todo, profile, cpp, cache_dir, jobs, want_models, roots, key)
    results = run.own_part()
    if want_models and _DEFERRING:
        _later(cache_dir, key, [(arch, model) for arch, model, _ in results if model])
    for fut in run.futures:
        _work_ahead(fut)
        found, diffs = _received(fut.result())
        results.extend(found)
        for arch, model, _ in found:
            if arch in diffs and model is not None:
                other, changes = diffs[arch]
                old = _RECENT.get((other, arch))
                if old is not None:  # the model the worker compared with, as sent here
                    from . import diff

                    diff.remember(old, model, changes)
    modelcache.store_texts(cache_dir, key, {arch: text for arch, _, text in results if text})
    return results


def _work_ahead(waiting: Future[str]) -> None:
    """While the worker is still on WAITING: this process's part of the next dumps
    ``start`` began, one after the other, until it is done (the other side of a diff,
    the second of a pair of views): the worker goes on from one to the next, and so does
    this process, rather than waiting for the worker in between.  Measured on a cold
    ``abi diff`` of a release pair: the worker, writing its passes and models, was
    0.03 s late with its part of the first guest view, which this process spent on the
    second's.  Its error, if any, is raised by that dump."""
    for launched in list(_STARTED.values()):
        if waiting.done():
            return
        if launched.ahead or not launched.futures or not launched.here:
            continue
        try:
            launched.ahead.append((launched.own(), None))
        except Exception as e:  # noqa: BLE001  (the dump it belongs to raises it)
            launched.ahead.append((None, e))


def write_texts_later() -> None:
    """From now on, the model cache gets the JSON of the models made in this process,
    and the segment store the pieces it parsed, later: from ``write_passes_soon``'s
    writer process (``_write_apart``), at ``finish`` or at exit, rather than before each
    dump returns (``abi diff``: 20 ms a model, 0.045 s of pieces for a cold tree); the
    workers it then starts write their models' JSON later too (``_remote``).  Until
    then a dump of the same snapshot in this process finds the model in memory
    (``_RECENT``), or makes it again."""
    if not _DEFERRING:
        _DEFERRING.append(True)
        _at_exit(_write_rest)


_DEFERRING: list[bool] = []  # write_texts_later was called
# Models this process made whose JSON the model cache is still to get (``_later``).
_UNWRITTEN: list[tuple[Path | None, Key, str, ArchModel]] = []
MAX_UNWRITTEN = 8  # past this the oldest are written at once (a watch bot lives long)


def _forget_unwritten() -> None:
    _DEFERRING.clear()
    _UNWRITTEN.clear()
    _WORKER_LATER.clear()


os.register_at_fork(after_in_child=_forget_unwritten)


def _later(cache_dir: Path | None, key: Key, models: Sequence[tuple[str, ArchModel]]) -> None:
    """Have the model cache get MODELS' JSON later (``write_texts_later``), the oldest
    past MAX_UNWRITTEN now."""
    _UNWRITTEN.extend((cache_dir, key, arch, model) for arch, model in models)
    if len(_UNWRITTEN) > MAX_UNWRITTEN:
        _write_unwritten(len(_UNWRITTEN) - MAX_UNWRITTEN)


def _write_rest() -> None:
    """What ``write_texts_later`` left to write and no writer took: the models' JSON and
    the parsed pieces (at ``finish``, or at exit)."""
    _write_unwritten()
    for parser in list(_PARSERS.values()):
        parser.flush()


def _write_unwritten(count: int | None = None) -> None:
    """Write the JSON of the COUNT oldest unwritten models (all: None); any thread."""
    done = 0
    while _UNWRITTEN and (count is None or done < count):
        try:
            entry = _UNWRITTEN.pop(0)
        except IndexError:  # another thread took the last one
            return
        _write_text(*entry)
        done += 1


def _write_text(cache_dir: Path | None, key: Key, arch: str, model: ArchModel) -> None:
    """The model cache's JSON of MODEL, an entry of ``_UNWRITTEN``."""
    from . import modelcache

    modelcache.store_texts(cache_dir, key, {arch: modelcache.arch_text(model)})


# What goes to a worker and back goes through files in this process's transfer directory
# (in /dev/shm, ``fast.scratch_dir``), the pipes carry their names.  Through the pipes, a
# worker's 2.6 MB of results waited for this process's result thread, which had to win
# the GIL from a busy main thread for every 64 kB of them: 0.15 s between a worker's two
# tasks of ``start``.  A snapshot's files are written once, for every dump of it.
_TRANSFER: list[Path] = []  # this process's directory, made on first use
_SENT: dict[str, Path] = {}  # digest of a snapshot's files -> their pickle
MAX_SENT = 16
_RECEIVED: dict[str, Mapping[str, bytes]] = {}  # in a worker: the snapshots it read last


def _forget_transfer() -> None:
    _TRANSFER.clear()
    _SENT.clear()
    _RECEIVED.clear()


os.register_at_fork(after_in_child=_forget_transfer)


def _transfer_dir() -> Path:
    if not _TRANSFER:
        import shutil
        import tempfile

        from .c import fast

        where = Path(tempfile.mkdtemp(prefix=f"{_STAGED_PREFIX}{os.getpid()}-",
                                      dir=fast.scratch_dir()))
        _TRANSFER.append(where)
        _at_exit(lambda: shutil.rmtree(where, ignore_errors=True))
    return _TRANSFER[0]


def read_ahead(tree: Path, revs: Sequence[str], config: Config
               ) -> Callable[[], tuple[list[HeaderSource], tuple[str, str] | None]] | None:
    """Read the public headers of REVS of the git tree TREE (``sources.from_tree``), and
    the release tag the last one's cycle counts from (``rating.release_tag``), in a
    process forked for it now (``_reader``); what it gives back, when called: the sources
    and the tag.  This process imports the engine meanwhile, rather than GitPython and
    then the engine, and so do the workers it forks later: they need neither GitPython
    nor an import of the engine of their own.  Measured on a cold ``abi diff
    RELEASE-4.21.0 RELEASE-4.22.0``: the first tools dump began 0.03-0.04 s sooner than
    with no read ahead, and 0.02-0.03 s sooner again than when a worker read them (it had
    to wait for the executor, then import GitPython, then the engine).  None when the
    dumps use no worker (one job, or one group of arches), or no process can be forked
    (no fork, another thread running): read them here."""
    import threading

    groups = _groups(list(dict.fromkeys(config.get("abi", "arches"))),
                     config.get("abi", "jobs") or os.cpu_count() or 1)
    if len(groups) < 2 or threading.active_count() > 1:
        return None
    reader = _reader(str(tree), list(revs), str(_transfer_dir()))
    if reader is None:
        return None
    from .c import pipeline  # noqa: F401  (what the dumps need, while the reader reads)

    def result() -> tuple[list[HeaderSource], tuple[str, str] | None]:
        import pickle

        from . import sources

        _worker(groups[0]).submit(_started)  # forked now, with the engine, while it reads
        read, release = reader()
        out = []
        for description, rev, digest, path in read:
            with open(path, "rb") as f:
                files = pickle.load(f)
            _SENT[digest] = Path(path)  # written for the workers: ``_sent`` writes no more
            view = MappingProxyType(files)
            sources.known_digest(view, digest)
            out.append(HeaderSource(description, rev, view))
        return out, release
    return result


_Read = tuple[list[tuple[str, str | None, str, str]], tuple[str, str] | None]


def _started() -> None:
    """A worker's first task when it is started before there is work for it."""


def _reader(tree: str, revs: list[str], where: str) -> Callable[[], _Read] | None:
    """``_read_revisions`` in a child process forked now (``_forked``), which hands its
    result back through a pipe; what waits for it and gives the result, or raises the
    error it met (a revision that does not exist: ``InputError``, as when this process
    reads it).  None when the fork fails."""
    import pickle

    from ..errors import EnvironmentFailure, XenpatchError

    readable, writable = os.pipe()

    def read() -> None:
        os.close(readable)
        try:
            data = pickle.dumps((None, _read_revisions(tree, revs, where)))
        except XenpatchError as e:
            data = pickle.dumps((e, None))
        except Exception as e:  # noqa: BLE001  (one line in the parent, no traceback)
            data = pickle.dumps((EnvironmentFailure(f"{tree}: reading {', '.join(revs)}: "
                                                    f"{type(e).__name__}: {e}"), None))
        with os.fdopen(writable, "wb") as f:
            f.write(data)
    pid = _forked(read)
    os.close(writable)
    if pid < 0:
        os.close(readable)
        return None

    def wait() -> _Read:
        with os.fdopen(readable, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        if not data:
            raise EnvironmentFailure(f"{tree}: the process reading {', '.join(revs)} died")
        error, found = pickle.loads(data)
        if error is not None:
            raise error
        return found
    return wait


def _read_revisions(tree: str, revs: Sequence[str], where: str) -> _Read:
    """``read_ahead``'s reader: each snapshot's files written to this process's transfer
    directory WHERE as ``_sent`` would; (description, commit, digest, path) of each, and
    the release tag of the last."""
    from .. import gitrepo
    from . import rating, sources  # not the engine: it is not needed to read them

    repo = gitrepo.open_repo(tree)  # one for all: each starts its own git cat-file
    out: list[tuple[str, str | None, str, str]] = []
    for rev in revs:
        src = sources.from_tree(Path(tree), rev, repo)
        digest = sources.digest(src.files)
        out.append((src.description, src.rev, digest,
                    str(_files_pickle(Path(where), digest, src.files))))
    last = out[-1][1] if out else None
    return out, (rating.release_tag(Path(tree), last, repo) if last else None)


def _files_pickle(where: Path, digest: str, files: Mapping[str, bytes]) -> Path:
    """FILES (of DIGEST) pickled in the transfer directory WHERE, unless they are there."""
    import pickle

    path = where / f"files-{digest}.pickle"
    if not path.is_file():
        path.write_bytes(pickle.dumps(dict(files), protocol=pickle.HIGHEST_PROTOCOL))
    return path


def _sent(files: Mapping[str, bytes]) -> tuple[str, str]:
    """(digest, path) of FILES pickled for the workers (written once per snapshot)."""
    from . import sources

    digest = sources.digest(files)
    path = _SENT.pop(digest, None)
    if path is None or not path.is_file():
        path = _files_pickle(_transfer_dir(), digest, files)
    _SENT[digest] = path
    while len(_SENT) > MAX_SENT:
        _SENT.pop(next(iter(_SENT))).unlink(missing_ok=True)
    return digest, str(path)


def _remote(sent: tuple[str, str], arches: Sequence[str], profile: str, cpp: str,
            want_models: bool, cache_dir: Path | None, roots: Sequence[str] | None,
            later: Key | None = None, digest: str | None = None,
            against: str | None = None) -> str:
    """``arch_models`` in a worker: the files from SENT (``_sent``), the results written
    beside them; the results' file name.  LATER: the models' JSON is not made now but
    written under that key by ``_write_own_passes`` (which the parent sends when this
    worker would wait for it: ``write_passes_soon``) or at the worker's exit, so that
    the results go back without it (measured: a release pair's tools models came back
    0.08 s sooner a side, in half the bytes).  DIGEST: the models' key, under which
    the worker keeps them (``_KEPT``) to compare the next dump's with, when that one's
    AGAINST names it (``start``): the results are (arch, model, text) and the changes
    by arch, (AGAINST, ``diff.diff_arch``'s changes)."""
    import pickle
    import uuid

    files_digest, where = sent
    files = _RECEIVED.pop(files_digest, None)
    if files is None:
        with open(where, "rb") as f:
            files = pickle.load(f)
    _RECEIVED[files_digest] = files
    while len(_RECEIVED) > MAX_STAGED:
        del _RECEIVED[next(iter(_RECEIVED))]
    out = arch_models(files, arches, profile, cpp, want_models, cache_dir, None, roots,
                      texts=later is None)
    if later is not None:
        if not _WORKER_LATER:
            _WORKER_LATER.append(True)
            _at_exit(_write_unwritten)
        _later(cache_dir, later, [(arch, model) for arch, model, _ in out if model])
    diffs: dict[str, tuple[str, Any]] = {}
    if digest is not None:
        for arch, model, _ in out:
            if model is None:
                continue
            old = _KEPT.get((against, arch)) if against is not None else None
            if against is not None and old is not None:
                from . import diff

                diffs[arch] = (against, diff.diff_arch(old, model))
            _KEPT[(digest, arch)] = model
            while len(_KEPT) > MAX_KEPT:
                del _KEPT[next(iter(_KEPT))]
    path = Path(where).with_name(f"result-{os.getpid()}-{uuid.uuid4().hex}.pickle")
    path.write_bytes(pickle.dumps((out, diffs), protocol=pickle.HIGHEST_PROTOCOL))
    return str(path)


_WORKER_LATER: list[bool] = []  # a worker's exit writes what ``_remote`` left to write
# In a worker: the models it made last, by key digest and arch (``_remote``).
_KEPT: dict[tuple[str, str], ArchModel] = {}
MAX_KEPT = 8
os.register_at_fork(after_in_child=_KEPT.clear)


def _received(where: str) -> tuple[list[tuple[str, ArchModel | None, str]],
                                   dict[str, tuple[str, Any]]]:
    """The results a worker wrote to WHERE (``_remote``), read once: (arch, model, text),
    and the changes it found by arch."""
    import pickle

    path = Path(where)
    try:
        data = path.read_bytes()
    finally:
        path.unlink(missing_ok=True)
    found: tuple[list[tuple[str, ArchModel | None, str]], dict[str, tuple[str, Any]]] = \
        pickle.loads(data)
    return found


# One worker process per group of arches, kept for the rest of the command: every dump
# sends a group to the same process, whose parser (``_parser``) still holds the pieces
# the group's earlier dumps parsed (the views and snapshots of one diff or history share
# most of them), and no dump pays for starting a process.
_WORKERS: dict[tuple[str, ...], Executor] = {}


def _worker(group: Sequence[str]) -> Executor:
    key = tuple(group)
    if key not in _WORKERS:
        from concurrent.futures import ProcessPoolExecutor  # not on the warm path

        if not _WORKERS:
            atexit.register(shutdown_workers)
        _WORKERS[key] = ProcessPoolExecutor(max_workers=1)
    return _WORKERS[key]


def forget() -> None:
    """Drop all this process keeps between dumps (models, parsed pieces, staged copies,
    memos, guesses) and stop the workers: what a benchmark's cold run starts from."""
    from . import families
    from .c import declare, macros, pipeline

    shutdown_workers()
    _reap_writers()
    _forget_unwritten()
    for path in _SENT.values():
        path.unlink(missing_ok=True)
    _SENT.clear()
    _RECEIVED.clear()
    _RECENT.clear()
    _KEPT.clear()
    _PARSERS.clear()
    for store in _STORES.values():
        store.drop()
    _STORES.clear()
    _unstage()
    pipeline._REJECTED.clear()
    pipeline._TOOLS_ONLY.clear()
    pipeline._REFUSES.clear()
    pipeline._AHEAD.clear()
    declare._LITERALS.clear()
    families._GROUPED.clear()
    families._NAMES.clear()
    macros.MEMO = macros.Memo()


def write_passes_soon() -> None:
    """Write the passes (``c.reuse``) kept so far rather than when the command ends: each
    worker as soon as it has done what it was sent so far, this process's in a writer
    process (``_write_apart``), with the JSON of its models (``write_texts_later``).
    For a command that has started all its whole-tree dumps (``abi diff`` once both
    sides' tools views are started: the guest views are partial, and a partial pass is
    never written): the workers while they would wait for this process to finish its
    own arches, and, called again once those are done, this process's while it goes on
    with the guest views.  The end of the command writes only what came after."""
    for pool in _WORKERS.values():
        pool.submit(_write_own_passes)
    taken = [(store, passes) for store in _STORES.values() if (passes := store.take())]
    texts = _UNWRITTEN[:]
    del _UNWRITTEN[:len(texts)]
    parsers = [parser for parser in _PARSERS.values() if parser.unflushed] \
        if _DEFERRING else []
    if taken or texts or parsers:
        _write_apart(taken, texts, parsers)


def _write_apart(taken: Sequence[tuple[PassStore, Any]],
                 texts: Sequence[tuple[Path | None, Key, str, ArchModel]],
                 parsers: Sequence[SegmentParser] = ()) -> None:
    """Write TAKEN passes, the JSON of TEXTS' models and the pieces PARSERS parsed since
    their last flush in a child process, forked for it:
    pickling and JSON are CPU work that holds the GIL, so a thread of this process took
    it from the guest views it was meant to wait with (a release pair's diff: 0.22 s of
    it, the diff before the views 0.05 s -> 0.26 s); the child has a copy of them and
    its own core.  It only serialises and writes files (nothing of the executor's
    threads, no import), and leaves by ``os._exit``: none of this process's exit
    handlers.  ``finish`` (or this process's exit) waits for it.  Where there is no
    fork, or it fails, a thread does it."""
    import json  # noqa: F401  (all the child needs, imported here, not in the child)
    import marshal  # noqa: F401
    import pickle  # noqa: F401
    import sqlite3  # noqa: F401
    import threading

    from . import modelcache  # noqa: F401  (loaded before the fork: _write_text uses it)

    def write() -> None:
        for store, passes in taken:
            store.write(passes)
        for entry in texts:
            _write_text(*entry)
        for parser in parsers:
            parser.flush()

    pid = _forked(write)
    if pid > 0:
        if not _WRITERS:
            _at_exit(_reap_writers)
        _WRITERS.append(pid)
        for parser in parsers:
            parser.flushed_elsewhere()
        return
    thread = threading.Thread(target=write)
    thread.start()
    _WRITING.append(thread)


def _forked(child: Callable[[], None]) -> int:
    """CHILD in a process forked for it, which then leaves by ``os._exit`` (none of this
    process's exit handlers); its pid, or -1 when there is no fork or it fails."""
    import warnings

    if not hasattr(os, "fork"):
        return -1
    try:
        with warnings.catch_warnings():  # 3.12+: "multi-threaded, use of fork()..."
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        return -1
    if pid == 0:
        try:
            child()
        finally:
            os._exit(0)
    return pid


_WRITERS: list[int] = []  # the writer processes of _write_apart, waited for by finish
_WRITING: list[Any] = []  # or the threads that did their work
os.register_at_fork(after_in_child=_WRITING.clear)
os.register_at_fork(after_in_child=_WRITERS.clear)


def _reap_writers() -> None:
    while _WRITERS:
        try:
            os.waitpid(_WRITERS.pop(), 0)
        except ChildProcessError:
            continue
    while _WRITING:
        _WRITING.pop().join()


def _write_own_passes() -> None:
    """This process's passes, and the JSON of the models it left to write later (a worker's:
    ``_remote``)."""
    for store in _STORES.values():
        store.save()
    _write_unwritten()


def finish() -> None:
    """The end of a command (``cli.main``): the workers stop and write their passes
    (``c.reuse``) while this process writes its own, in a thread (at exit the two would
    come one after the other: the workers are joined before the exit handlers run); then
    the cpp threads stop, so that no thread of the engine outlives the command
    (``cli.run`` then leaves without the interpreter's teardown)."""
    import threading

    def save() -> None:
        _write_own_passes()
        _write_rest()

    _reap_writers()  # what write_passes_soon began (long done, as a rule)
    saving = threading.Thread(target=save)
    saving.start()
    try:
        shutdown_workers()  # joins them: they have written theirs
    finally:
        saving.join()
    pipeline = sys.modules.get(f"{__package__}.c.pipeline")
    if pipeline is not None:  # a guess of cpp_ahead nothing asked for may still run
        pipeline.stop_cpp_threads()


def shutdown_workers() -> None:
    """Stop the worker processes (at exit; a test that counts processes may call it)."""
    for pool in _WORKERS.values():
        pool.shutdown(cancel_futures=True)
    _WORKERS.clear()
    _STARTED.clear()  # their futures were the workers'


def _groups(arches: Sequence[str], workers: int) -> list[list[str]]:
    """Arches per worker: as many groups as workers, an arch family (x86, arm) kept
    together so that its arches share parsed segments."""
    if not arches:
        return []
    if workers >= len(arches):
        return [[a] for a in arches]
    groups: list[list[str]] = [[] for _ in range(min(workers, len(arches)))]
    for i, arch in enumerate(sorted(arches, key=lambda a: (BY_NAME[a].family, a))):
        groups[i * len(groups) // len(arches)].append(arch)
    return [g for g in groups if g]


_PARSERS: dict[Path, SegmentParser] = {}
# Pieces a process's parser keeps between dumps (a piece's nodes are a few kB; a history
# of a release cycle sees about 20 000): past this it starts again from the store.
MAX_PIECES = 60_000


def _parser(cache_dir: Path | None) -> SegmentParser:
    """This process's parser over the segment store under CACHE_DIR, kept across dumps."""
    from .c.parse import SegmentParser
    from .segments import SegmentCache

    store = SegmentCache.under(cache_dir)
    parser = _PARSERS.get(store.path)
    if parser is None or parser.size > MAX_PIECES:
        parser = _PARSERS[store.path] = SegmentParser(store)
    return parser


_STORES: dict[Path, PassStore] = {}
# A worker forked from this process keeps and writes its own passes (``_at_exit``).
os.register_at_fork(after_in_child=_STORES.clear)


def _pass_store(cache_dir: Path | None) -> PassStore:
    """This process's passes (``c.reuse``) with the files of earlier ones under CACHE_DIR,
    written back when the process ends."""
    from .c import reuse
    from .modelcache import default_dir

    where = reuse.directory_under(cache_dir or default_dir())
    store = _STORES.get(where)
    if store is None:
        store = _STORES[where] = reuse.PassStore(where)
        _at_exit(store.save)
    return store


def arch_models(files: Mapping[str, bytes], arches: Sequence[str], profile: str, cpp: str,
                want_models: bool = True, cache_dir: Path | None = None,
                clock: pipeline.Clock | None = None, roots: Sequence[str] | None = None,
                texts: bool = True) -> list[tuple[str, ArchModel | None, str]]:
    """(arch, model, JSON text) of ARCHES (runs in a worker process; the JSON is made
    here, in parallel, rather than in the parent; TEXTS false: no text, "", for a model
    whose text ``_later`` writes, in the parent or in a worker, ``_remote``).  Parsed
    pieces are shared between the ARCHES and the process's earlier dumps, and kept in
    the segment cache under CACHE_DIR."""
    from .c import fast, pipeline
    from .modelcache import arch_text
    from .segments import SegmentCache

    clock = clock or pipeline.Clock()
    parser = _parser(cache_dir)
    store = _pass_store(cache_dir)
    guesses = pipeline.remember_rejected(SegmentCache.under(cache_dir).path.with_name(
        "cpp-rejects.json"))
    out: list[tuple[str, ArchModel | None, str]] = []
    with fast.collector_paused():
        with clock.stage("stage"):
            tmp, staged = _staged(files)
            pipeline.cpp_ahead(files, arches[1:], profile, cpp, staged, roots)
        for arch in arches:
            model = pipeline.run(files, arch, profile, cpp, tmp, parser, clock, staged, roots,
                                 store)
            with clock.stage("json"):
                out.append((arch, model if want_models else None,
                            arch_text(model) if texts or not want_models else ""))
        with clock.stage("store"):
            if not _DEFERRING:  # else the writer or the end of the command stores them
                parser.flush()
            guesses()
    return out


# The snapshots this process staged last, by content (``sources.digest``): the views of a
# snapshot (tools, guest, guest-latest) are read from one staged copy.  Removed when the
# process ends (a worker's too: ``multiprocessing``'s exit finalizers).
_STAGED: dict[str, tuple[Path, pipeline.Staged]] = {}
MAX_STAGED = 4
# A worker forked from this process stages its own copies (cpp writes its wrapper there).
os.register_at_fork(after_in_child=_STAGED.clear)


def _staged(files: Mapping[str, bytes]) -> tuple[Path, pipeline.Staged]:
    import shutil
    import tempfile

    from . import sources
    from .c import fast, pipeline

    digest = sources.digest(files)
    hit = _STAGED.pop(digest, None)
    if hit is None:
        global _HOOKED
        if _HOOKED != os.getpid():
            _HOOKED = os.getpid()
            _at_exit(_unstage)
            _sweep(fast.scratch_dir())
        tmp = Path(tempfile.mkdtemp(prefix=f"{_STAGED_PREFIX}{os.getpid()}-",
                                    dir=fast.scratch_dir()))
        try:
            hit = (tmp, pipeline.stage(files, tmp))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    _STAGED[digest] = hit
    while len(_STAGED) > MAX_STAGED:
        shutil.rmtree(_STAGED.pop(next(iter(_STAGED)))[0], ignore_errors=True)
    return hit


_STAGED_PREFIX = "xenpatch-abi-"
_HOOKED: int | None = None  # the process whose exit removes its staged copies


def _sweep(where: str | None) -> None:
    """Remove the staged copies of processes that are gone: one killed (SIGKILL, the OOM
    killer: a watch bot) cannot remove its own, and they sit in /dev/shm, in memory."""
    import shutil
    import tempfile

    base = Path(where or tempfile.gettempdir())
    for path in base.glob(f"{_STAGED_PREFIX}*-*"):
        pid = path.name[len(_STAGED_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or not path.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive, someone else's
            continue


def _unstage() -> None:
    import shutil

    while _STAGED:
        shutil.rmtree(_STAGED.popitem()[1][0], ignore_errors=True)


def _at_exit(func: Callable[[], None]) -> None:
    """FUNC at this process's exit, a worker's included (which leaves by os._exit)."""
    import multiprocessing
    from multiprocessing import util

    if multiprocessing.parent_process() is not None:
        util.Finalize(None, func, exitpriority=10)
    else:
        atexit.register(func)
