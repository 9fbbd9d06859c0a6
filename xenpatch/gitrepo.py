"""The one module that talks to git, through GitPython.

Library code never runs ``git`` by hand; errors from GitPython are re-raised
as xenpatch errors naming the repository and revision.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import EnvironmentFailure, InputError

try:
    import git
    from git.exc import BadName, GitCommandError, InvalidGitRepositoryError, NoSuchPathError
    from gitdb.base import IStream
except ImportError as e:  # GitPython raises ImportError when the git binary is missing
    raise EnvironmentFailure(f"GitPython cannot be used: {e}") from e


def open_repo(path: str | Path) -> git.Repo:
    """The git repository whose work tree is PATH (not a parent's)."""
    try:
        repo = git.Repo(str(path), search_parent_directories=False)
    except (InvalidGitRepositoryError, NoSuchPathError) as e:
        raise InputError(f"{path}: not a git repository") from e
    if not repo.bare and Path(repo.git_dir) == Path(path).resolve():
        # A bare repository without core.bare in its config (a mirror made by
        # hand): GitPython guesses the parent directory as its work tree and
        # runs git there, so pin git to the repository itself.
        repo.git.update_environment(GIT_DIR=repo.git_dir)
    return repo


def resolve(repo: git.Repo, rev: str) -> git.Commit:
    """The commit REV names, or InputError naming it."""
    try:
        return repo.commit(rev)
    except (BadName, ValueError, GitCommandError) as e:
        raise InputError(f"{repo.working_tree_dir}: unknown revision {rev!r}") from e


def read_files(repo: git.Repo, rev: str, subdir: str, suffixes: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The blobs under SUBDIR at REV, keyed by path relative to SUBDIR (no checkout)."""
    commit = resolve(repo, rev)
    try:
        tree = commit.tree / subdir
    except KeyError as e:
        raise InputError(f"{repo.working_tree_dir}@{rev}: no {subdir}/") from e
    if not isinstance(tree, git.Tree):
        raise InputError(f"{repo.working_tree_dir}@{rev}: {subdir} is not a directory")
    out: dict[str, bytes] = {}
    for item in tree.traverse():
        if not isinstance(item, git.Blob):
            continue
        rel = str(item.path)[len(subdir) + 1:]
        if suffixes and not rel.endswith(suffixes):
            continue
        data = _BLOBS.pop(item.binsha, None)
        if data is None:
            data = item.data_stream.read()
            _BLOBS_SIZE[0] += len(data)
        _BLOBS[item.binsha] = data
        out[rel] = data
    while _BLOBS_SIZE[0] > MAX_BLOB_BYTES and _BLOBS:
        _BLOBS_SIZE[0] -= len(_BLOBS.pop(next(iter(_BLOBS))))
    return out


# The blobs read_files read last, by object id: the next revision of the same directory
# (the other side of ``abi diff``, the next commit of ``abi history``) has most of them
# (4.21.0 -> 4.22.0: 61 of the 77 public headers), and git need not send them again.
_BLOBS: dict[bytes, bytes] = {}
_BLOBS_SIZE = [0]
MAX_BLOB_BYTES = 32 << 20


def config_values(cwd: str | Path) -> dict[str, str]:
    """``git config --list`` as git sees it from CWD (system, global -- which honours
    ``$GIT_CONFIG_GLOBAL`` -- and the repository's, if CWD is in one).

    Keys are lower-cased; when a key is set more than once the last value wins,
    as ``git config --get`` does.
    """
    try:
        out = git.Git(str(cwd)).config("--list", "-z")
    except GitCommandError as e:
        last = (str(e.stderr).strip().splitlines() or [f"exit {e.status}"])[-1]
        raise EnvironmentFailure(f"git config in {cwd}: {last}") from e
    values: dict[str, str] = {}
    for item in out.split("\0"):
        if item:
            key, _, value = item.partition("\n")
            values[key.lower()] = value
    return values


# --- helpers for `xenpatch generate` (xenpatch/generate/series.py) -----------
# They work in scratch clones only; the user's repository is read, never written.

# git run with only the settings xenpatch passes: the user's and the system's
# git config (format.*, diff.*, am.*) must not change the patches we write.
ISOLATED_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def config_value(repo: git.Repo, key: str) -> str | None:
    """``git config KEY`` as git itself reads it (repository, global, system), or None."""
    try:
        value = repo.git.config("--get", key)
    except GitCommandError:
        return None
    return value.strip() or None


def is_dirty(repo: git.Repo) -> bool:
    """Tracked files modified in the work tree or the index (untracked files do not count)."""
    return not repo.bare and repo.is_dirty(index=True, working_tree=True, untracked_files=False)


def read_file(repo: git.Repo, rev: str, path: str) -> bytes | None:
    """The blob at PATH in REV, or None when REV has no such file."""
    commit = resolve(repo, rev)
    try:
        return commit.tree[path].data_stream.read()
    except KeyError:
        return None


def _git(repo: git.Repo, *args: str, env: dict[str, str] | None = None, what: str = "") -> str:
    try:
        return repo.git.execute(["git", *args], env={**ISOLATED_ENV, **(env or {})})
    except GitCommandError as e:
        last = (str(e.stderr).strip().splitlines() or [str(e)])[-1].strip(" '")
        raise EnvironmentFailure(f"git {what or args[0]} in {repo.git_dir}: {last}") from e


def scratch_clone(source: git.Repo, dest: Path, *, bare: bool = True) -> git.Repo:
    """A clone of SOURCE at DEST sharing its objects (``--shared``), without a checkout."""
    args = ["clone", "-q", "--shared", "--no-checkout"] + (["--bare"] if bare else [])
    try:
        git.Git().execute(["git", *args, str(source.git_dir), str(dest)], env=ISOLATED_ENV)
    except GitCommandError as e:
        raise EnvironmentFailure(f"git clone of {source.git_dir}: {e.stderr.strip()}") from e
    return git.Repo(str(dest))


def ident_env(name: str, email: str, date: str) -> dict[str, str]:
    """Author and committer identity and date for git commands."""
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
            "GIT_COMMITTER_DATE": date}


def commit_files(repo: git.Repo, parent: str, files: dict[str, bytes], message: str,
                 ident: dict[str, str], scratch: Path) -> str:
    """A commit on PARENT whose tree is PARENT's with FILES replaced (no work tree needed).

    FILES must exist in PARENT (their mode is kept).  SCRATCH is a directory for
    the temporary index.  Returns the new commit's sha."""
    index = scratch / "index"
    env = {**ident, "GIT_INDEX_FILE": str(index)}
    _git(repo, "read-tree", parent, env=env, what="read-tree")
    for path, data in sorted(files.items()):
        mode = "100644"
        try:
            mode = f"{resolve(repo, parent).tree[path].mode:o}"
        except KeyError:
            pass
        blob = repo.odb.store(IStream("blob", len(data), io.BytesIO(data))).hexsha.decode()
        _git(repo, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env,
             what="update-index")
    tree = _git(repo, "write-tree", env=env, what="write-tree")
    msg = scratch / "message"
    msg.write_text(message, encoding="utf-8")
    sha = _git(repo, "commit-tree", tree, "-p", parent, "-F", str(msg), env=env,
               what="commit-tree")
    index.unlink(missing_ok=True)
    return sha.strip()


def set_branch(repo: git.Repo, branch: str, sha: str, description: str | None = None) -> None:
    """refs/heads/BRANCH at SHA (HEAD follows it), with a branch description if given."""
    _git(repo, "update-ref", f"refs/heads/{branch}", sha, what="update-ref")
    _git(repo, "symbolic-ref", "HEAD", f"refs/heads/{branch}", what="symbolic-ref")
    if description is not None:
        _git(repo, "config", f"branch.{branch}.description", description, what="config")


def format_patch(repo: git.Repo, base: str, branch: str, out: Path, *, subject_prefix: str,
                 ident: dict[str, str], signature: str,
                 in_reply_to: str | None = None) -> list[Path]:
    """``git format-patch`` of BASE..BRANCH into OUT with a cover letter from the branch
    description (first paragraph: subject) and ``base-commit:``; returns the files in order.
    IN_REPLY_TO: every file gets ``In-Reply-To:``/``References:`` that Message-ID."""
    args = ["format-patch", "-q", "-o", str(out), "--cover-letter",
            "--cover-from-description=subject", f"--subject-prefix={subject_prefix}",
            f"--base={base}", f"--signature={signature}", "--numbered",
            *([f"--in-reply-to={in_reply_to}"] if in_reply_to else []),
            f"{base}..refs/heads/{branch}"]
    listing = _git(repo, *args, env=ident, what="format-patch")
    del listing
    return sorted(out.glob("*.patch"))


def apply_mailbox(repo_dir: Path, patches: list[Path], ident: dict[str, str]) -> str:
    """``git am`` of PATCHES in the work tree REPO_DIR; returns the resulting HEAD's tree sha,
    or raises InputError with git's last line when a patch does not apply."""
    repo = git.Repo(str(repo_dir))
    try:
        repo.git.execute(["git", "am", "-q", *map(str, patches)],
                         env={**ISOLATED_ENV, **ident})
    except GitCommandError as e:
        last = (str(e.stderr).strip().splitlines() or [str(e)])[0].strip(" '")
        raise InputError(f"git am: {last}") from e
    return repo.head.commit.tree.hexsha


def sparse_checkout(repo: git.Repo, rev: str, branch: str, paths: list[str]) -> None:
    """Check out only PATHS of REV on a new BRANCH (a cheap work tree for ``git am``)."""
    _git(repo, "sparse-checkout", "set", "--no-cone", *[f"/{p}" for p in paths],
         what="sparse-checkout")
    _git(repo, "checkout", "-q", "-b", branch, rev, what="checkout")


def checkout(repo: git.Repo, rev: str) -> None:
    """Check out REV (detached) in the work tree of REPO, a scratch clone."""
    _git(repo, "checkout", "-q", "--detach", rev, what="checkout")


# --- helpers for the watch bot's mirrors of public-inbox archives (xenpatch/review/feeds.py) ---


def fetch_remote(repo_dir: Path) -> bool:
    """``git fetch`` of a mirror's remotes when it has any; whether it had one."""
    repo = open_repo(repo_dir)
    if not repo.remotes:
        return False
    _git(repo, "fetch", "-q", "--all", "--prune", what="fetch")
    return True


def new_commits(repo_dir: Path, since: str | None, limit: int) -> list[tuple[str, int]]:
    """Commits of a public-inbox epoch after SINCE (all when None), oldest first, each with
    the size of its blob ``m`` (the message; public-inbox's v2 format has one commit per
    mail), so a caller can refuse a huge one before reading it; 0 when the commit has no
    ``m`` (a deletion).  At most LIMIT."""
    repo = open_repo(repo_dir)
    try:
        head = repo.head.commit.hexsha
    except ValueError:
        return []  # an epoch without commits yet
    if since == head:
        return []
    span = f"{since}..{head}" if since else head
    try:
        shas = repo.git.execute(["git", "rev-list", "--reverse", "--topo-order", span],
                                env=ISOLATED_ENV).split()
    except GitCommandError as e:
        last = (str(e.stderr).strip().splitlines() or [f"exit {e.status}"])[-1]
        raise EnvironmentFailure(f"git rev-list in {repo_dir}: {last}") from e
    out: list[tuple[str, int]] = []
    for sha in shas[:limit]:
        try:
            out.append((sha, int(repo.commit(sha).tree["m"].size)))
        except KeyError:
            out.append((sha, 0))
    return out


def read_message(repo_dir: Path, sha: str) -> bytes:
    """The ``m`` blob of commit SHA of a public-inbox epoch."""
    repo = open_repo(repo_dir)
    try:
        return bytes(repo.commit(sha).tree["m"].data_stream.read())
    except KeyError:
        return b""


# --- helpers for `xenpatch review` (xenpatch/review/apply.py) -----------------
# The patches under review are untrusted: git runs in a scratch clone with no
# hooks (core.hooksPath pointing at an empty place), none of the user's or the
# system's config or attributes (so no filter, textconv or diff driver it names
# can run), and no fsmonitor.

UNTRUSTED_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
                    "-c", "core.attributesFile=/dev/null", "-c", "am.threeWay=false",
                    "-c", "am.keepcr=false", "-c", "gc.auto=0", "-c", "maintenance.auto=false")
UNTRUSTED_ENV = {**ISOLATED_ENV, "GIT_ATTR_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def review_clone(source: git.Repo, dest: Path) -> git.Repo:
    """A scratch clone of SOURCE at DEST (objects shared, no checkout, no hooks run)."""
    try:
        git.Git().execute(["git", *UNTRUSTED_CONFIG, "clone", "-q", "--shared", "--no-checkout",
                           str(source.git_dir), str(dest)], env=UNTRUSTED_ENV)
    except GitCommandError as e:
        raise EnvironmentFailure(f"git clone of {source.git_dir}: {str(e.stderr).strip()}") from e
    return git.Repo(str(dest))


def untrusted_git(repo: git.Repo, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``git ARGS`` in the scratch clone REPO with UNTRUSTED_CONFIG: (status, stdout, stderr);
    a non-zero status is the caller's to judge."""
    status, out, err = repo.git.execute(["git", *UNTRUSTED_CONFIG, *args],
                                        env={**UNTRUSTED_ENV, **(env or {})},
                                        with_extended_output=True, with_exceptions=False)
    return int(status or 0), str(out), str(err)


def blame_origins(repo: git.Repo, rev: str, path: str) -> list[tuple[str, int]]:
    """For each line of PATH at REV: (commit that added it, its line number in that commit)."""
    status, out, err = untrusted_git(repo, "blame", "--porcelain", rev, "--", path)
    if status != 0:
        last = (err.strip().splitlines() or [f"exit {status}"])[-1]
        raise EnvironmentFailure(f"git blame {path} in {repo.git_dir}: {last}")
    origins: list[tuple[str, int]] = []
    for line in out.split("\n"):
        parts = line.split(" ")
        if len(parts) >= 3 and len(parts[0]) == 40 and parts[1].isdigit() and parts[2].isdigit():
            origins.append((parts[0], int(parts[1])))
    return origins


# --- public-inbox v2 mirrors (xenpatch/review/mirror.py) ----------------------
# An epoch (git/N.git) has one commit per message, the message in the blob `m`;
# a purge replaces `m` by `d`, a blob with the removed message
# (public-inbox-v2-format(5)).


def inbox_blobs(repo: git.Repo) -> list[str]:
    """The ``m`` blobs of every commit of the epoch REPO, oldest first, without the
    messages a later commit purged (their blob reappears as ``d``)."""
    out = _git(repo, "log", "--all", "--reverse", "--format=", "--raw", "--no-abbrev",
               "--no-renames", "--", "m", "d", what="log")
    kept: list[str] = []
    purged: set[str] = set()
    for line in out.splitlines():
        if not line.startswith(":"):
            continue
        meta, _, path = line.partition("\t")
        fields = meta.split()
        if len(fields) < 5 or fields[4][:1] not in "AM":
            continue
        if path == "m":
            kept.append(fields[3])
        elif path == "d":
            purged.add(fields[3])
    return [b for b in kept if b not in purged]


def blob_heads(repo: git.Repo, shas: list[str], limit: int) -> Iterator[tuple[str, int, bytes]]:
    """(sha, size, the first LIMIT bytes up to the first blank line) of each blob of SHAS,
    in order, from one ``git cat-file --batch`` (one round trip, not one per blob)."""
    with tempfile.TemporaryFile() as listing:
        listing.write("".join(f"{s}\n" for s in shas).encode())
        listing.seek(0)
        try:
            proc = repo.git.execute(["git", "cat-file", "--batch"], istream=listing,
                                    as_process=True, env=ISOLATED_ENV)
        except GitCommandError as e:
            raise EnvironmentFailure(f"git cat-file in {repo.git_dir}: {e}") from e
        out = proc.stdout
        try:
            for sha in shas:
                header = out.readline().split()
                if len(header) != 3 or header[1] != b"blob":
                    raise EnvironmentFailure(f"git cat-file in {repo.git_dir}: no blob {sha}")
                size = int(header[2])
                data = out.read(size + 1)[:-1]  # the content and git's newline after it
                end = data.find(b"\n\n")
                yield sha, size, data[:min(limit, end + 2 if end >= 0 else size)]
        finally:
            proc.wait()


def blob_size(repo: git.Repo, sha: str) -> int:
    """The size of blob SHA in bytes (``git cat-file -s``, without reading it)."""
    return int(repo.odb.info(bytes.fromhex(sha)).size)


def read_blob(repo: git.Repo, sha: str, limit: int) -> bytes:
    """At most LIMIT bytes of the blob SHA."""
    stream = repo.odb.stream(bytes.fromhex(sha))
    data = stream.read(min(limit, int(stream.size)))
    if len(data) < int(stream.size):
        stream.read()  # drain git cat-file --batch's answer, so the next read is in step
    return bytes(data)


def tag_names(repo: git.Repo, prefix: str = "") -> list[str]:
    """The names of the repository's tags that start with PREFIX."""
    return sorted(str(t.name) for t in repo.tags if str(t.name).startswith(prefix))


def nearest_tag(repo: git.Repo, rev: str, pattern: str) -> str | None:
    """The nearest tag matching PATTERN among REV and its ancestors (``git describe``), or None."""
    sha = resolve(repo, rev).hexsha
    try:
        return repo.git.describe("--tags", "--abbrev=0", f"--match={pattern}", sha).strip() or None
    except GitCommandError:
        return None

def commits_touching(repo: git.Repo, rev_range: str, path: str) -> list[tuple[str, str | None, str]]:
    """(sha, first parent or None, subject) of the commits of REV_RANGE (``A..B``) that
    change PATH, oldest first, as ``git log --reverse -- PATH`` lists them."""
    try:
        commits = list(repo.iter_commits(rev_range, paths=path, reverse=True))
    except (GitCommandError, BadName, ValueError) as e:
        raise InputError(f"{repo.working_tree_dir or repo.git_dir}: bad revision range "
                         f"{rev_range!r}") from e
    return [(c.hexsha, c.parents[0].hexsha if c.parents else None,
             str(c.summary)) for c in commits]
