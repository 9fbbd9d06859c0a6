"""Helpers for the review tests: commits on the real Xen tree without a checkout, and their mails.

A series is made the way a contributor makes one: commits (here written
with git's plumbing into a bare clone, so no work tree is checked out),
``git format-patch``, and a thread of mails with fixed Message-IDs and
dates so that goldens do not move.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

AUTHOR = ("Teddy Astie", "teddy.astie@vates.tech")
DATE = "2025-12-28T13:54:00+01:00"
ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}

Edit = bytes | Callable[[str], str] | None  # new content, a change of the old text, or removal


def bare_clone(xen_tree: Path, where: Path) -> Path:
    """A bare clone of the 4.17.5 tree under WHERE (objects shared) that a test module commits
    its series into."""
    dest = where / "xen.git"
    subprocess.run(["git", "clone", "-q", "--bare", "--shared", str(xen_tree), str(dest)], check=True)
    return dest


def git(repo: Path, *args: str, env: Mapping[str, str] | None = None,
        input: bytes | None = None) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                          env={**os.environ, **ENV, **(env or {})}, input=input, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr.decode().strip()}")
    return proc.stdout.decode()


def commit(repo: Path, parent: str, edits: Mapping[str, Edit], subject: str, body: str = "",
           trailers: Sequence[str] | None = None, author: tuple[str, str] = AUTHOR,
           date: str = DATE) -> str:
    """A commit on PARENT with EDITS applied (no work tree needed); TRAILERS default to the
    author's Signed-off-by."""
    index = repo / f"index.{os.getpid()}"
    env = {"GIT_INDEX_FILE": str(index), "GIT_AUTHOR_NAME": author[0],
           "GIT_AUTHOR_EMAIL": author[1], "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_NAME": author[0],
           "GIT_COMMITTER_EMAIL": author[1], "GIT_COMMITTER_DATE": date}
    git(repo, "read-tree", parent, env=env)
    for path, edit in edits.items():
        if edit is None:
            git(repo, "update-index", "--force-remove", path, env=env)
            continue
        if callable(edit):
            old = git(repo, "show", f"{parent}:{path}")
            new = edit(old)
            assert new != old, f"edit of {path} changed nothing"
            data = new.encode()
        else:
            data = edit
        blob = git(repo, "hash-object", "-w", "--stdin", input=data).strip()
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
    tree = git(repo, "write-tree", env=env).strip()
    index.unlink()
    if trailers is None:
        trailers = [f"Signed-off-by: {author[0]} <{author[1]}>"]
    message = subject + "\n\n" + (body.strip() + "\n\n" if body.strip() else "") + \
        "\n".join(trailers) + "\n"
    return git(repo, "commit-tree", tree, "-p", parent, "-m", message, env=env).strip()


def replace_once(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"{old!r} not in the file"
        return text.replace(old, new, 1)
    return edit


def chain(repo: Path, base: str, commits: Sequence[dict]) -> list[str]:
    """Commits one on top of the other (each a dict of ``commit``'s keyword arguments)."""
    shas, parent = [], base
    for c in commits:
        parent = commit(repo, parent, **c)
        shas.append(parent)
    return shas


def format_patches(repo: Path, base: str, head: str, out: Path, *, prefix: str = "PATCH",
                   cover: str | None = None, version: int | None = None) -> list[Path]:
    """``git format-patch`` of BASE..HEAD into OUT (with ``base-commit:``); COVER: the cover
    letter's subject and blurb (``subject\\n\\nblurb``)."""
    out.mkdir(parents=True, exist_ok=True)
    args = ["format-patch", "-q", "-o", str(out), f"--subject-prefix={prefix}", f"--base={base}",
            "--signature=2.39.5", "--zero-commit"]
    if version:
        args.append(f"-v{version}")
    if cover is not None:
        args.append("--cover-letter")
    n = int(git(repo, "rev-list", "--count", f"{base}..{head}").strip())
    if n > 1 or cover is not None:
        args.append("--numbered")
    git(repo, *args, f"{base}..{head}", env={"GIT_COMMITTER_DATE": DATE, "GIT_COMMITTER_NAME": AUTHOR[0],
                                             "GIT_COMMITTER_EMAIL": AUTHOR[1]})
    files = sorted(out.glob("*.patch"))
    if cover is not None:
        title, _, blurb = cover.partition("\n\n")
        text = files[0].read_text()
        text = text.replace("*** SUBJECT HERE ***", title).replace("*** BLURB HERE ***", blurb)
        files[0].write_text(text)
    return files


def thread(files: Sequence[Path], tag: str, *, to: str = "xen-devel@lists.xenproject.org",
           cc: Sequence[str] = (), reply_to: str | None = None,
           date: str = "Sun, 28 Dec 2025 13:54:00 +0100") -> bytes:
    """FILES as one mbox thread: Message-ID ``<TAG.N@example.org>``, each In-Reply-To the first
    (as ``git send-email --thread --no-chain-reply-to``), or REPLY_TO for the first."""
    out = bytearray()
    first = None
    for i, path in enumerate(files):
        text = path.read_text()
        head, _, body = text.partition("\n\n")
        head = re.sub(r"^Date: .*$", f"Date: {date}", head, flags=re.M)
        mid = f"{tag}.{i}@example.org"
        extra = [f"Message-ID: <{mid}>", f"To: {to}"] + ([f"Cc: {', '.join(cc)}"] if cc else [])
        parent = first or reply_to
        if parent:
            # References as git send-email writes them: the reply's parent's chain.
            chain_ids = ([reply_to] if reply_to else []) + ([first] if first else [])
            extra += [f"In-Reply-To: <{parent}>",
                      "References: " + " ".join(f"<{m}>" for m in chain_ids)]
        first = first or mid
        out += (head + "\n" + "\n".join(extra) + "\n\n" + body).encode()
        if not out.endswith(b"\n"):
            out += b"\n"
    return bytes(out)


def run_review(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xenpatch.cli", "review", *args], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, **env}, check=False)
