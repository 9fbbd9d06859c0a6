"""One review, end to end: apply the series in a scratch clone, run every rule, collect the findings.

The rules are pure (``review/rules/``); this module does the I/O they need:
git (through ``apply`` and ``gitrepo``), the ABI engine (``abi.api.dump`` of
the base and of the result, headers read from git revisions of the
scratch clone) and the header compile checks.

Profiles: the ``tools`` view (``__XEN_TOOLS__``, the default of ``abi``)
always; the ``guest`` view too when a touched public header has
``__XEN_INTERFACE_VERSION__`` conditionals, the only place where a guest
built without ``__XEN_TOOLS__`` sees another layout or value (measured:
each extra profile costs about as much as the first, so it is not run
when it cannot differ).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import gitrepo
from ..abi import api, sources
from ..abi.c import preprocess
from ..abi.check import check_model
from ..abi.diff import Change, diff_models
from ..abi.headercheck import check_headers
from ..abi.model import AbiModel
from ..abi.sources import HeaderSource
from ..errors import InputError
from . import apply
from .finding import Finding, ordered
from .hunks import FileDiff, files_touched, parse_diff
from .locate import PUBLIC, Locator
from .rules import abi as abi_rules
from .rules import compat, style, subject, tags, text
from .series import Series

XLAT = "xen/include/xlat.lst"


@dataclass(frozen=True)
class Settings:
    arches: tuple[str, ...] = ("x86_32", "x86_64", "arm32", "arm64")
    cpp: str = "cpp"
    cache_dir: Path | None = None
    jobs: int = 0
    suppress: tuple[Mapping[str, str], ...] = ()
    configured_base: str = "HEAD"


@dataclass(frozen=True)
class AbiDiff:
    """The ``tools`` models of the base and of the result, and the changes between them
    as the diff finds them (before the interface rules rate them): what the watch bot's
    cross-series claims are made of."""

    base: AbiModel
    result: AbiModel
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Review:
    series: Series
    base: apply.Base
    applied: tuple[int, ...]
    findings: tuple[Finding, ...]
    diffs: Mapping[int, tuple[FileDiff, ...]] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    abi: AbiDiff | None = None  # when every patch applied and one touches a public header

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


def patch_findings(series: Series, diffs: Mapping[int, tuple[FileDiff, ...]],
                   before: Mapping[str, str | None]) -> list[Finding]:
    """The rules that need only the mails: completeness, tags, subject, style, text."""
    out: list[Finding] = []
    for n in series.missing:
        out.append(Finding("series-incomplete", "error", n, None, None,
                           f"patch {n}/{series.total} of v{series.version} is not in the thread; "
                           "the series is reviewed without it"))
    for p in series.patches:
        out += tags.check_tags(p.number, p.author, p.trailers)
        out += subject.check_subject(p.number, p.summary)
        if not diffs[p.number]:
            out.append(Finding("apply-failed", "error", p.number, None, None,
                               "the mail has no diff"))
        for d in diffs[p.number]:
            out += style.check_style(p.number, d, before.get(d.path))
            out += text.check_vendor_terms(p.number, d)
            out += text.check_includes(p.number, d)
    return out


def review(series: Series, tree: Path, given_base: str | None, settings: Settings) -> Review:
    """Review SERIES against the git repository TREE (only read; see apply.py)."""
    repo = gitrepo.open_repo(tree)
    base = apply.choose_base(repo, given_base, series, settings.configured_base)
    diffs = {p.number: parse_diff(p.diff) for p in series.patches}
    touched = [path for ds in diffs.values() for path in files_touched(ds)]
    before = {path: _text(gitrepo.read_file(repo, base.sha, path))
              for path in dict.fromkeys(touched) if path.endswith(style.C_SUFFIXES)}
    findings = patch_findings(series, diffs, before)
    profiles: tuple[str, ...] = ()
    abi: AbiDiff | None = None
    with tempfile.TemporaryDirectory(prefix="xenpatch-review-") as tmp:
        applied, clone = apply.apply_series(repo, base, series, Path(tmp))
        findings += applied.findings
        public = [p for p in dict.fromkeys(touched) if p.startswith(PUBLIC) and p.endswith(".h")]
        if applied.commits and public:
            more, profiles, abi = abi_findings(Path(clone.working_tree_dir or tmp), base.sha,
                                               applied.result, public, touched,
                                               applied.locator, settings)
            findings += more
            if set(applied.applied) != {p.number for p in series.patches}:
                abi = None  # the diff of part of the series claims nothing
    return Review(series, base, applied.applied, ordered(findings), diffs, profiles, abi)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def _profiles(locator: Locator, public: Sequence[str]) -> tuple[str, ...]:
    """``tools``, plus ``guest`` when a line the series added sits inside (or is) a
    preprocessor conditional on ``__XEN_INTERFACE_VERSION__``."""
    for path in public:
        lines = locator.lines.get(path, ())
        added = set(locator.added.get(path, {}))
        stack: list[bool] = []
        for n, line in enumerate(lines, 1):
            word = line.strip().lstrip("#").strip().split(" ", 1)[0] if \
                line.lstrip().startswith("#") else ""
            versioned = "__XEN_INTERFACE_VERSION__" in line
            if word in ("if", "ifdef", "ifndef"):
                stack.append(versioned)
            elif word in ("elif",) and stack:
                stack[-1] = stack[-1] or versioned
            elif word == "endif" and stack:
                stack.pop()
            if n in added and (versioned or any(stack)):
                return ("tools", "guest")
    return ("tools",)


def abi_findings(clone: Path, base: str, result: str, public: Sequence[str],
                 touched: Sequence[str], locator: Locator,
                 settings: Settings) -> tuple[list[Finding], tuple[str, ...], AbiDiff | None]:
    """The ABI, compat, docs and header-compile findings of BASE -> RESULT, the profiles
    dumped, and the ``tools`` diff."""
    old_src = sources.from_tree(clone, base)
    new_src = sources.from_tree(clone, result)
    out: list[Finding] = []
    profiles = _profiles(locator, public)
    tools: AbiDiff | None = None
    for profile in profiles:
        old, new = (api.dump(s, settings.arches, profile, cpp=settings.cpp,
                             cache_dir=settings.cache_dir, jobs=settings.jobs)
                    for s in (old_src, new_src))
        changes = diff_models(old, new)
        if profile == "tools":
            tools = AbiDiff(old, new, changes)
            changes = rate_changes(changes, clone, base, result, old_src, new_src, old, new,
                                   settings)
        out += abi_rules.diff_findings(changes, locator, profile, old, new)
        if profile != "tools":
            continue
        prefixes = _touched_families((old, new), {ch.name for ch in changes})
        out += abi_rules.check_findings(check_model(_families_of(old, prefixes), settings.suppress),
                                        check_model(_families_of(new, prefixes), settings.suppress),
                                        locator)
        out += abi_rules.family_facts(changes, new, locator)
        repo = gitrepo.open_repo(clone)
        xlat = _text(gitrepo.read_file(repo, result, XLAT)) or ""
        out += compat.compat_findings(changes, old, new, xlat, locator)
        if any(ch.kind in ("macro-added", "enumerator-added") for ch in changes):
            docs = {p: d.decode("utf-8", "replace")
                    for p, d in _docs(repo, base).items()}
            out += compat.docs_findings(changes, old, new, docs, touched, locator)
    out += _header_checks(old_src.files, new_src.files, public, locator)
    return _dedup_profiles(out), profiles, tools


def rate_changes(changes: tuple[Change, ...], clone: Path, base: str, result: str,
                 old_src: HeaderSource, new_src: HeaderSource, old: AbiModel, new: AbiModel,
                 settings: Settings) -> tuple[Change, ...]:
    """CHANGES rated by Xen's interface rules (abi/interfaces.py, as ``abi diff`` rates them:
    stable or tools, the *_INTERFACE_VERSION bump since the release the cycle started from,
    alias removals, guarded changes).  Only a breaking change can be re-rated, and the rules
    need the guest views of both snapshots, so a series without one skips them."""
    if not any(ch.severity == "breaking" for ch in changes):
        return changes
    from ..abi import rating

    def load(source: HeaderSource, profile: str, roots: frozenset[str] | None) -> AbiModel:
        return api.dump(source, settings.arches, profile, cpp=settings.cpp,
                        cache_dir=settings.cache_dir, jobs=settings.jobs, roots=roots)

    def start(source: HeaderSource, profile: str, roots: frozenset[str] | None) -> None:
        api.start(source, settings.arches, profile, cpp=settings.cpp,
                  cache_dir=settings.cache_dir, jobs=settings.jobs, roots=roots)

    return rating.rate(changes, clone, old_src, new_src, old, new, load, (base, result),
                       rating.release_tag(clone, result), start)


def _touched_families(models: Sequence[AbiModel], names: set[str]) -> set[str]:
    """The prefixes of the families, in any of MODELS, with a member in NAMES."""
    return {f.prefix for m in models for a in m.arches for f in a.families
            if names & set(f.members)}


def _families_of(model: AbiModel, prefixes: set[str]) -> AbiModel:
    """MODEL with only the families of PREFIXES (those the series changed), kept whole on
    both sides so that a finding the base has already is still matched: a family the
    series did not touch has the same ``abi check`` findings before and after, so
    checking it twice cannot find anything new (measured: the whole check of both models
    was 40% of a review with the base cached)."""
    arches = tuple(replace(a, families=tuple(f for f in a.families if f.prefix in prefixes))
                   for a in model.arches)
    return replace(model, arches=arches)


def _docs(repo: gitrepo.git.Repo, rev: str) -> dict[str, bytes]:
    try:
        files = gitrepo.read_files(repo, rev, "docs")
    except InputError:
        return {}
    return {f"docs/{p}": d for p, d in files.items() if b"\0" not in d[:4096]}


def _header_checks(old: Mapping[str, bytes], new: Mapping[str, bytes], public: Sequence[str],
                   locator: Locator) -> list[Finding]:
    """Xen's header checks on the touched headers of the result, and on the base only when
    one fails there; never on a snapshot with an unsafe #include (gcc would read the file
    it names, and its messages would quote it)."""
    rel = [p[len(PUBLIC):] for p in public if p[len(PUBLIC):] in new]
    if not rel:
        return []
    unsafe = preprocess.unsafe_includes(new)
    if unsafe:
        return [Finding("header-compile", "info", None, None, None,
                        "the header checks were not run: the result has an unsafe #include")]
    results = check_headers(new, rel)
    if all(r.ok for r in results):
        return []
    failing = sorted({r.header for r in results if not r.ok and r.header in old})
    before = check_headers(old, failing) if failing and not preprocess.unsafe_includes(old) else ()
    return compat.header_findings(before, results, locator)


def _dedup_profiles(findings: list[Finding]) -> list[Finding]:
    """The guest view repeats most of what the tools view found: keep one per place and rule."""
    seen: set[tuple[str, int | None, str | None, int | None, str]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.rule, f.patch, f.file, f.line, f.message.replace(", guest view", ""))
        if f.rule.startswith("abi-") and f.severity != "info":
            if key in seen:
                continue
            seen.add(key)
        out.append(f)
    return out
