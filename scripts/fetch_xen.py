#!/usr/bin/env python3
"""Fetch real Xen from Debian for xenpatch's tests and demo, cached.

What it brings (each into ``$XENPATCH_CACHE`` or ``~/.cache/xenpatch``):

* ``xen-4.17``      the whole Xen tree of bookworm's ``xen`` source package
                    (upstream orig tarball, Xen 4.17.5), made a git
                    repository with one commit of fixed identity and date so
                    that its hash is the same on every machine;
* ``headers-4.17``  ``/usr/include/xen`` of bookworm's ``libxen-dev``;
* ``headers-4.20``  ``/usr/include/xen`` of trixie's ``libxen-dev``.

apt runs with a private configuration below the cache directory: its own
sources file, lists and archives.  The archive URIs are read from the
machine's own Debian sources (``/etc/apt/sources.list`` and
``/etc/apt/sources.list.d``), so this works behind whatever mirror the
machine uses; the machine's apt configuration is never changed.

Usage: fetch_xen.py [--cache DIR] [NAME ...]   (default: all three)
Prints ``NAME PATH`` for each, one a line.  Exit 0 on success, 3 when apt
or the network fails, 2 on bad usage.
"""
from __future__ import annotations

import argparse
import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
TREE_DATE = "2025-07-01T00:00:00+00:00"  # fixed: the tree's commit hash is stable
TREE_IDENT = ("xenpatch fetch", "fetch@xenpatch.invalid")

# name -> (suite, what)
TARGETS = {
    "xen-4.17": ("bookworm", "source"),
    "headers-4.17": ("bookworm", "headers"),
    "headers-4.20": ("trixie", "headers"),
}


class FetchError(Exception):
    """A step failed; the message is one line."""


def debian_uris() -> list[str]:
    """Archive URIs of the machine's own Debian sources (not -security)."""
    uris: list[str] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        text = Path(path).read_text(errors="replace")
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            suites = fields.get("suites", "").split()
            if any(s.endswith("-security") for s in suites):
                continue
            if "debian" not in fields.get("signed-by", "") + " ".join(suites) and not any(
                s in ("bookworm", "trixie", "stable", "sid", "unstable", "testing") for s in suites
            ):
                continue
            uris.extend(fields.get("uris", "").split())
    lists = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in lists:
        if not os.path.exists(path):
            continue
        for line in Path(path).read_text(errors="replace").splitlines():
            line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] in ("deb", "deb-src") and not line[2].endswith("-security"):
                if line[2].split("-")[0] in ("bookworm", "trixie", "stable", "sid", "unstable", "testing"):
                    uris.append(line[1])
    seen: list[str] = []
    for uri in uris:
        uri = uri.rstrip("/")
        if uri not in seen:
            seen.append(uri)
    if not seen:
        raise FetchError("no Debian archive found in /etc/apt/sources.list{,.d}")
    return seen


class PrivateApt:
    """apt-get with its own sources, lists and cache under ROOT."""

    def __init__(self, root: Path, suite: str, uris: list[str]):
        self.root = root
        self.suite = suite
        (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (root / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (root / "parts").mkdir(exist_ok=True)
        (root / "prefs").mkdir(exist_ok=True)
        status = root / "status"
        if not status.exists():
            status.write_text("")
        lines = []
        for uri in uris:
            lines.append(f"deb [arch=amd64 signed-by={KEYRING}] {uri} {suite} main")
            lines.append(f"deb-src [signed-by={KEYRING}] {uri} {suite} main")
        (root / "sources.list").write_text("\n".join(lines) + "\n")

    def options(self) -> list[str]:
        r = self.root
        return [
            "-o", f"Dir::Etc::SourceList={r / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={r / 'parts'}",
            "-o", f"Dir::Etc::PreferencesParts={r / 'prefs'}",
            "-o", f"Dir::Etc::Preferences={r / 'prefs' / 'none'}",
            "-o", f"Dir::State::Lists={r / 'lists'}",
            "-o", f"Dir::State::status={r / 'status'}",
            "-o", f"Dir::Cache={r}",
            "-o", f"Dir::Cache::Archives={r / 'archives'}",
            "-o", "APT::Architecture=amd64",
            "-o", "APT::Get::List-Cleanup=0",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
            "-q",
        ]

    def run(self, *args: str, cwd: Path | None = None) -> str:
        cmd = ["apt-get", *self.options(), *args]
        try:
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800)
        except FileNotFoundError as e:
            raise FetchError("apt-get not found: this script needs a Debian machine") from e
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise FetchError(f"apt-get {args[0]} failed for {self.suite}: {last}")
        return proc.stdout

    def update(self) -> None:
        if not any((self.root / "lists").glob("*Packages*")):
            self.run("update")


def fetch_source(apt: PrivateApt, dest: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="src-", dir=dest.parent))
    try:
        apt.run("source", "--download-only", "xen", cwd=work)
        origs = sorted(work.glob("xen_*.orig.tar.*"))
        if not origs:
            raise FetchError("the xen source package has no .orig tarball")
        version = origs[0].name.split("_")[1].rsplit(".orig", 1)[0]
        unpack = work / "unpack"
        with tarfile.open(origs[0]) as tar:
            tar.extractall(unpack, filter="tar")
        tops = [p for p in unpack.iterdir() if p.is_dir()]
        tree = tops[0] if len(tops) == 1 else unpack
        if not (tree / "xen" / "include" / "public" / "xen.h").exists():
            raise FetchError(f"{origs[0].name} holds no xen/include/public/xen.h")
        git_init(tree, f"Xen {version} (Debian source package xen, upstream tarball)")
        tree.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def git_init(tree: Path, message: str) -> None:
    env = dict(os.environ)
    env.update({
        "GIT_AUTHOR_NAME": TREE_IDENT[0], "GIT_AUTHOR_EMAIL": TREE_IDENT[1],
        "GIT_COMMITTER_NAME": TREE_IDENT[0], "GIT_COMMITTER_EMAIL": TREE_IDENT[1],
        "GIT_AUTHOR_DATE": TREE_DATE, "GIT_COMMITTER_DATE": TREE_DATE,
        "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
    })
    for args in (["init", "-q", "-b", "master"],
                 ["add", "-A", "-f"],
                 ["-c", "core.autocrlf=false", "commit", "-q", "--no-gpg-sign", "-m", message],
                 ["tag", "base"]):
        proc = subprocess.run(["git", *args], cwd=tree, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise FetchError(f"git {args[0]} failed in {tree}: {proc.stderr.strip()[:200]}")


def fetch_headers(apt: PrivateApt, dest: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="hdr-", dir=dest.parent))
    try:
        apt.run("download", "libxen-dev", cwd=work)
        debs = sorted(work.glob("libxen-dev_*.deb"))
        if not debs:
            raise FetchError("apt-get download gave no libxen-dev .deb")
        proc = subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(work / "root")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise FetchError(f"dpkg-deb -x {debs[0].name} failed: {proc.stderr.strip()[:200]}")
        inc = work / "root" / "usr" / "include" / "xen"
        if not (inc / "xen.h").exists():
            raise FetchError(f"{debs[0].name} holds no usr/include/xen/xen.h")
        (inc / ".xenpatch-source").write_text(debs[0].name + "\n")
        inc.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch(name: str, cache: Path) -> Path:
    suite, what = TARGETS[name]
    dest = cache / name
    if dest.exists():
        return dest
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if dest.exists():  # another process fetched it meanwhile
            return dest
        apt = PrivateApt(cache / "apt" / suite, suite, debian_uris())
        apt.update()
        if what == "source":
            fetch_source(apt, dest)
        else:
            fetch_headers(apt, dest)
    return dest


def default_cache() -> Path:
    env = os.environ.get("XENPATCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xenpatch"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="cache directory")
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(TARGETS))
    args = parser.parse_args(argv)
    bad = [n for n in args.names if n not in TARGETS]
    if bad:
        print(f"fetch_xen: unknown name {bad[0]!r} (known: {', '.join(TARGETS)})", file=sys.stderr)
        return 2
    cache = (args.cache or default_cache()).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    try:
        for name in args.names or list(TARGETS):
            print(name, fetch(name, cache), flush=True)
    except FetchError as e:
        print(f"fetch_xen: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
