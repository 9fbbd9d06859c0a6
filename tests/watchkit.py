"""Helpers for the watch tests: a private bare Xen tree, commits made with git plumbing, series as
``git format-patch --thread`` mails, and the watch command run in-process or as a process."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from xenpatch.review.mbox import split_mbox

AUTHOR = ("Ada Tester", "ada@example.org")
DATE = "2026-11-27T12:00:00Z"
_SERIAL = itertools.count(1)


def git_env(home: Path, author: tuple[str, str] = AUTHOR) -> dict[str, str]:
    return {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": author[0], "GIT_COMMITTER_EMAIL": author[1],
            "GIT_AUTHOR_DATE": DATE, "GIT_COMMITTER_DATE": DATE, "PATH": "/usr/bin:/bin",
            "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / "no-such-gitconfig")}


def git(repo: Path, *args: str, env: dict[str, str] | None = None,
        data: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, env=env or git_env(repo.parent),
                          input=data, capture_output=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr.decode()}"
    return proc.stdout.decode()


def bare_tree(xen_tree: Path, dest: Path) -> Path:
    """A bare clone of the real tree sharing its objects: the watch's --tree, and the
    place a test 'merges' a series (a new commit on its branch)."""
    subprocess.run(["git", "clone", "-q", "--bare", "--shared", str(xen_tree), str(dest)],
                   check=True, capture_output=True)
    return dest


def commit_edit(repo: Path, parent: str, edits: dict[str, tuple[str, str]], message: str,
                author: tuple[str, str] = AUTHOR) -> str:
    """A commit on PARENT replacing OLD by NEW once in each file (no work tree)."""
    env = {**git_env(repo.parent, author), "GIT_INDEX_FILE": str(repo / "kit-index")}
    git(repo, "read-tree", parent, env=env)
    for path, (old, new) in edits.items():
        text = git(repo, "show", f"{parent}:{path}")
        assert old in text, (path, old)
        blob = git(repo, "hash-object", "-w", "--stdin", env=env,
                   data=text.replace(old, new, 1).encode()).strip()
        git(repo, "update-index", "--cacheinfo", f"100644,{blob},{path}", env=env)
    tree = git(repo, "write-tree", env=env).strip()
    return git(repo, "commit-tree", tree, "-p", parent, "-m", message, env=env).strip()


XEN_H = "xen/include/public/xen.h"
PVH = "docs/misc/pvh.pandoc"
PM_MASK = "#define SIF_PM_MASK"


def flag_series(tree: Path, base: str, name: str, bit: int, version: int, note: str = "",
                author: tuple[str, str] = AUTHOR, docs: bool = True) -> str:
    """Two commits: a SIF_ flag in xen.h and its docs."""
    one = commit_edit(tree, base, {XEN_H: (PM_MASK, f"#define {name:<17} (1<<{bit})  /* {note or name} */\n"
                                           + PM_MASK)},
                      f"xen/public: introduce {name}\n\nA start-info flag.\n\n"
                      f"Signed-off-by: {author[0]} <{author[1]}>", author)
    if not docs:
        return one
    return commit_edit(tree, one, {PVH: (" * `cr4`: all bits are cleared.\n",
                                         f" * `cr4`: all bits are cleared.\n\n * `{name}`{note}.\n")},
                       f"docs/pvh: document {name}\n\nSay what it means (v{version}).\n\n"
                       f"Signed-off-by: {author[0]} <{author[1]}>", author)


def series_mails(repo: Path, base: str, tip: str, *, version: int = 1, cover: str | None = None,
                 in_reply_to: str | None = None, author: tuple[str, str] = AUTHOR,
                 resend: bool = False) -> list[bytes]:
    """``git format-patch --thread=shallow`` of BASE..TIP as mails (a cover letter when
    COVER gives its subject), with base-commit:, ready for public-inbox-mda."""
    prefix = "PATCH RESEND" if resend else "PATCH"
    args = ["format-patch", "--stdout", "--thread=shallow", f"--base={base}",
            f"--subject-prefix={prefix}", "--to=xen-devel@lists.xenproject.org"]
    if version > 1:
        args.append(f"-v{version}")
    if cover:
        args.append("--cover-letter")
    if in_reply_to:
        args.append(f"--in-reply-to={in_reply_to}")
    data = git(repo, *args, f"{base}..{tip}", env=git_env(repo.parent, author)).encode()
    mails = split_mbox(data, "format-patch", max_messages=100, max_message_bytes=1 << 24)
    # git names a cover letter cover.<time>.git.<email>: the same for every series a test
    # makes within a second; real Message-IDs are unique, so make these so too.
    tag = f"cover-{next(_SERIAL)}.".encode()
    mails = [m.replace(b"<cover.", b"<" + tag) for m in mails]
    # git send-email declares the charset of an 8-bit body (its --8bit-encoding); format-patch
    # alone does not when only the diff is 8-bit.
    mails = [m if m.isascii() else m.replace(
        b"\n\n", b"\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
        b"Content-Transfer-Encoding: 8bit\n\n", 1) for m in mails]
    if cover:
        mails[0] = (mails[0].replace(b"*** SUBJECT HERE ***", cover.encode())
                    .replace(b"*** BLURB HERE ***", b"What the series does."))
    return mails


def message_id(mail: bytes) -> str:
    for line in mail.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().strip(b"<>").decode()
    raise AssertionError("no Message-ID")


def config_file(tmp_path: Path, tree: Path, cache: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[tree]\npath = "{tree}"\n[abi]\ncache = "{cache}"\n'
                    f'[identity]\nname = "Xen Review Bot"\nemail = "bot@example.org"\n{extra}')
    return path


def run_watch(config: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``xenpatch watch`` as its own process (so SIGKILL hits only it)."""
    return subprocess.run([sys.executable, "-m", "xenpatch.cli", "--config", str(config),
                           "watch", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
