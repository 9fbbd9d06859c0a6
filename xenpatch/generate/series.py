"""Generating a series end to end: model, compose, commit in a scratch clone, self-check, write.

The user's checkout is only read (its commits and objects); commits are made
on ``xenpatch/<change>-v<N>`` in a temporary ``--shared`` clone, the patch
files come from ``git format-patch`` there, and they are written to the
output directory only when every self-check passed (else the command exits
1 and nothing is written).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import xenpatch

from .. import gitrepo
from ..abi.arch import NAMES as ARCH_NAMES
from ..abi.model import AbiModel
from ..errors import InputError, UsageError
from ..mail.state import STATE_FILE
from . import golang, selfcheck
from .compose import PatchText, compose
from .flag import FlagPlan, check_name_free, choose_bit, find_family, plan_flag
from .render import make_env, render
from .spec import ChangeSpec

PUBLIC = "xen/include/public/"


@dataclass(frozen=True)
class Options:
    tree: Path
    base: str
    out: Path
    version: int
    rfc: bool
    signoff: bool
    name: str  # identity
    email: str
    date: str  # git date: "@<epoch> +0000"
    changelog: str = ""
    in_reply_to: str | None = None  # Message-ID the cover letter replies to (--in-reply-to)
    templates: Path | None = None
    build_check: bool = False
    arches: tuple[str, ...] = ARCH_NAMES
    profile: str = "tools"
    cpp: str = "cpp"
    cache_dir: Path | None = None
    jobs: int = 0
    suppress: tuple = ()


@dataclass(frozen=True)
class Result:
    change: str
    branch: str
    base: str  # sha
    bit: int
    subjects: tuple[str, ...]  # of the written files, cover letter first
    files: tuple[Path, ...]  # written (empty when a check failed)
    checks: tuple[selfcheck.CheckResult, ...]
    notes: tuple[str, ...] = ()  # what was skipped or noticed (e.g. Go bindings not regenerated)
    in_reply_to: str | None = None  # the Message-ID the series replies to

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


ModelFn = Callable[[Path, str], AbiModel]


def subject_prefix(rfc: bool, version: int) -> str:
    """``RFC PATCH v2``; version 1 carries no number, as git format-patch and Xen do."""
    return ("RFC PATCH" if rfc else "PATCH") + (f" v{version}" if version > 1 else "")


def open_tree(tree: Path) -> gitrepo.git.Repo:
    if not tree.exists():
        raise InputError(f"--tree {tree}: no such directory")
    repo = gitrepo.open_repo(tree)
    if gitrepo.is_dirty(repo):
        raise InputError(f"--tree {tree}: has uncommitted changes (commit or stash them first)")
    return repo


def default_model(opts: Options) -> ModelFn:
    """The ABI model of a commit of a repository, by the ABI engine."""
    def model(repo_path: Path, rev: str) -> AbiModel:
        from ..abi import api, sources
        return api.dump(sources.from_tree(repo_path, rev), opts.arches, opts.profile,
                        cpp=opts.cpp, cache_dir=opts.cache_dir, jobs=opts.jobs)
    return model


def generate_series(spec: ChangeSpec, opts: Options, model_of: ModelFn | None = None,
                    build: Callable[[Path, gitrepo.git.Repo, str], selfcheck.CheckResult]
                    | None = None) -> Result:
    """Generate, self-check and (when every check passes) write the series of SPEC."""
    model_of = model_of or default_model(opts)
    repo = open_tree(opts.tree)
    base = gitrepo.resolve(repo, opts.base).hexsha
    base_model = model_of(opts.tree, base)
    check_name_free(base_model, spec.name)
    fam = find_family(base_model, spec.family)
    bit = choose_bit(fam, spec.bit)

    def read(path: str) -> str:
        data = gitrepo.read_file(repo, base, path)
        if data is None:
            raise InputError(f"{opts.tree}@{opts.base}: no {path}")
        return data.decode("utf-8")

    def optional(path: str) -> str | None:
        data = gitrepo.read_file(repo, base, path)
        return None if data is None else data.decode("utf-8")

    plan = plan_flag(spec, fam, bit, read(f"{PUBLIC}{fam.header}"))
    env = make_env(opts.templates)
    ident = f"{opts.name} <{opts.email}>"
    patches, notes = compose(spec, plan, read, env, identity=ident, signoff=opts.signoff,
                             optional=optional)
    missing = missing_requirement(spec, base_model)
    reply = opts.in_reply_to or spec.in_reply_to
    notes += _version_notes(spec, opts, reply, missing)
    branch = f"xenpatch/{spec.key}-v{opts.version}"
    cover = render(env, "cover-letter.txt.j2", subject=spec.cover_subject, body=spec.cover_body,
                   changelog=opts.changelog, version=opts.version, changes=spec.changes,
                   credits=spec.credits,
                   notes=[spec.requires.absent] if missing and spec.requires else [])
    with tempfile.TemporaryDirectory(prefix="xenpatch-generate-") as tmp:
        work = Path(tmp)
        go = golang.regenerate(patches, lambda d: gitrepo.read_files(repo, base, d, golang.SUFFIXES),
                               work)
        patches = go.patches
        scratch = gitrepo.scratch_clone(repo, work / "series.git")
        env_id = gitrepo.ident_env(opts.name, opts.email, opts.date)
        head = _commit(scratch, base, patches, env_id, work)
        gitrepo.set_branch(scratch, branch, head, description=cover.rstrip("\n") + "\n")
        files = gitrepo.format_patch(
            scratch, base, branch, work / "out", subject_prefix=subject_prefix(opts.rfc, opts.version),
            ident=env_id, signature=f"xenpatch {xenpatch.__version__}", in_reply_to=reply)
        checks = _self_checks(spec, opts, scratch, work, base, head, files, base_model, plan,
                              patches, model_of, env_id)
        if all(c.ok for c in checks) and build is not None:
            checks += (build(work, scratch, head),)
        result = Result(spec.key, branch, base, bit, tuple(_subject(f) for f in files), (), checks,
                        notes + go.notes, reply)
        if not result.ok:
            return result
        return replace(result, files=_write(files, opts.out))


def _version_notes(spec: ChangeSpec, opts: Options, reply: str | None,
                   missing: str | None) -> tuple[str, ...]:
    notes: tuple[str, ...] = (missing,) if missing else ()
    if opts.version > 1 and reply is None:
        notes += (f"v{opts.version} is not threaded to v{opts.version - 1}: give --in-reply-to "
                  f"(or in_reply_to in [changes.{spec.key}.v{opts.version}]) the Message-ID "
                  f"of v{opts.version - 1}'s cover letter",)
    return notes


def missing_requirement(spec: ChangeSpec, model: AbiModel) -> str | None:
    """A note when no macro of MODEL matches SPEC's ``requires.pattern``, else None."""
    if spec.requires is None:
        return None
    rx = re.compile(spec.requires.pattern)
    if any(rx.search(m.name) for a in model.arches for m in a.macros):
        return None
    return (f"requires: the tree has no {spec.requires.what} (no macro matches "
            f"{spec.requires.pattern!r}): the docs say what the option does, and the cover "
            "letter says that the tree cannot create such a guest yet")


def _commit(scratch: gitrepo.git.Repo, base: str, patches: tuple[PatchText, ...],
            ident: dict[str, str], work: Path) -> str:
    head = base
    for p in patches:
        head = gitrepo.commit_files(scratch, head, {path: text.encode("utf-8")
                                                    for path, text in p.files},
                                    p.message, ident, work)
    return head


def _subject(path: Path) -> str:
    """The Subject: of a written patch file, unfolded (git folds subjects past 78 columns)."""
    from ..mail.compose import parse_patch_file
    return parse_patch_file(path.name, path.read_bytes()).subject


def _self_checks(spec: ChangeSpec, opts: Options, scratch: gitrepo.git.Repo, work: Path,
                 base: str, head: str, files: list[Path], base_model: AbiModel, plan: FlagPlan,
                 patches: tuple[PatchText, ...], model_of: ModelFn,
                 ident: dict[str, str]) -> tuple[selfcheck.CheckResult, ...]:
    from ..abi import check as abicheck
    from ..abi.diff import diff_models
    from ..abi.headercheck import check_headers

    touched = sorted({path for p in patches for path, _ in p.files})
    am = _am_check(scratch, work, base, head, files[1:], touched, ident)
    result_model = model_of(Path(scratch.git_dir), head)
    findings = selfcheck.judge_findings(abicheck.check_model(base_model, opts.suppress),
                                        abicheck.check_model(result_model, opts.suppress))
    added = {spec.name: 1 << plan.bit}
    if plan.idiom == "bit-number":
        added[f"_{spec.name}"] = plan.bit
    markers = [m.name for m in find_family(base_model, spec.family).markers
               if any(i == m.line - 1 for i, _ in plan.markers)]
    diff = selfcheck.judge_diff(diff_models(base_model, result_model), added, markers,
                                result_model, base_model)
    public = gitrepo.read_files(scratch, head, PUBLIC.rstrip("/"), (".h",))
    headers = [p[len(PUBLIC):] for p in touched if p.startswith(PUBLIC)]
    hdr = selfcheck.judge_headers(check_headers(public, headers))
    texts = [(f.name, f.read_text(encoding="utf-8")) for f in files]
    columns = selfcheck.judge_columns(texts)
    meaning = selfcheck.judge_meaning(spec, plan.path, texts[1:])
    return (am, findings, diff, hdr, columns) + ((meaning,) if meaning else ())


def _am_check(scratch: gitrepo.git.Repo, work: Path, base: str, head: str, patches: list[Path],
              touched: list[str], ident: dict[str, str]) -> selfcheck.CheckResult:
    am_repo = gitrepo.scratch_clone(scratch, work / "am", bare=False)
    gitrepo.sparse_checkout(am_repo, base, "xenpatch-am-check", touched)
    expected = gitrepo.resolve(scratch, head).tree.hexsha
    try:
        tree = gitrepo.apply_mailbox(work / "am", patches, ident)
    except InputError as e:
        return selfcheck.judge_am(None, expected, str(e))
    return selfcheck.judge_am(tree, expected)


# What `xenpatch send` leaves in a series directory (mail/command.py, mail/state.py): a dry
# run's mbox, the resume record, and their temporary files if it was killed while writing.
SEND_FILES = ("xenpatch-dry-run.mbox", STATE_FILE)


def _is_series_file(path: Path) -> bool:
    name = path.name
    return path.is_file() and (name.endswith(".patch") or name in SEND_FILES or any(
        name.startswith(f".{f}.tmp") for f in SEND_FILES))


def check_out(out: Path) -> None:
    """UsageError unless OUT can take the series: absent below a writable directory, or an
    earlier series (patches, and what send left there), which is then replaced whole.
    Cheap, so that ``generate`` calls it before any work starts."""
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"--out {out}: exists and is not a directory")
        foreign = [p.name for p in sorted(out.iterdir()) if not _is_series_file(p)]
        if foreign:
            raise UsageError(f"--out {out}: exists and is not a series directory ({foreign[0]} is "
                             "neither a patch nor a file of xenpatch send); give another --out")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: cannot write in {parent}")


def _write(files: list[Path], out: Path) -> tuple[Path, ...]:
    """Put FILES into OUT, replacing an earlier series there; all or nothing."""
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for f in files:
            shutil.copyfile(f, staging / f.name)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise UsageError(f"--out {out}: cannot write: {e.strerror}") from e
    return tuple(out / f.name for f in files)
