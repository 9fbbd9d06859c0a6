"""Fetch real Xen from Debian into the cache: the default tree and two libxen-dev header sets.

``xenpatch fetch-xen [NAME...]`` (and ``xentree.resolve`` when no tree is
configured) brings, each into ``$XENPATCH_CACHE``, else
``$XDG_CACHE_HOME/xenpatch``, else ``~/.cache/xenpatch``:

* ``xen-4.17``      the whole Xen tree of bookworm's ``xen`` source package
                    (upstream orig tarball, Xen 4.17.5), made a git
                    repository with one commit of fixed identity and date so
                    that its hash is the same on every machine;
* ``headers-4.17``  ``/usr/include/xen`` of bookworm's ``libxen-dev``;
* ``headers-4.20``  ``/usr/include/xen`` of trixie's ``libxen-dev``.

apt runs with a private configuration below the cache directory (its own
sources file, lists and archives), whose archive URIs are read from the
machine's own Debian sources, so this works behind whatever mirror the
machine uses and never changes the machine's apt configuration.  What is
fetched, how big and where it goes is told through ``progress.current()``.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import proc
from .config import Config
from .errors import EnvironmentFailure, UsageError
from .progress import current
from .result import Result

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
TREE_DATE = "2025-07-01T00:00:00+00:00"  # fixed: the tree's commit hash is stable
TREE_IDENT = ("xenpatch fetch", "fetch@xenpatch.invalid")
SUITES = ("bookworm", "trixie", "stable", "sid", "unstable", "testing")
TIMEOUT = 1800.0


@dataclass(frozen=True)
class Target:
    suite: str
    kind: str  # "source": the whole tree; "headers": libxen-dev's /usr/include/xen
    what: str


TARGETS = {
    "xen-4.17": Target("bookworm", "source", "the whole Xen 4.17.5 tree (bookworm's xen source package)"),
    "headers-4.17": Target("bookworm", "headers", "/usr/include/xen of bookworm's libxen-dev (4.17)"),
    "headers-4.20": Target("trixie", "headers", "/usr/include/xen of trixie's libxen-dev (4.20)"),
}


def default_cache() -> Path:
    """``$XENPATCH_CACHE``, else ``$XDG_CACHE_HOME/xenpatch``, else ``~/.cache/xenpatch``."""
    env = os.environ.get("XENPATCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xenpatch"


def human(size: int) -> str:
    """SIZE in bytes as apt shows it (kB, MB: powers of 1000)."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    return f"{max(size, 1) / 1000:.0f} kB"


def _stanza_uris(text: str) -> list[str]:
    uris: list[str] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        suites = fields.get("suites", "").split()
        if fields.get("enabled", "yes").lower() == "no" or any(s.endswith("-security") for s in suites):
            continue
        if "debian" in fields.get("signed-by", "") + " ".join(suites) or any(s in SUITES for s in suites):
            uris.extend(fields.get("uris", "").split())
    return uris


def debian_uris() -> list[str]:
    """Archive URIs of the machine's own Debian sources (not -security), in order, once each."""
    uris: list[str] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        uris += _stanza_uris(Path(path).read_text(errors="replace"))
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if not os.path.exists(path):
            continue
        for line in Path(path).read_text(errors="replace").splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] in ("deb", "deb-src") and not words[2].endswith("-security") \
                    and words[2].split("-")[0] in SUITES:
                uris.append(words[1])
    seen: list[str] = []
    for uri in (u.rstrip("/") for u in uris):
        if uri not in seen:
            seen.append(uri)
    if not seen:
        raise EnvironmentFailure("no Debian archive found in /etc/apt/sources.list{,.d}")
    return seen


@dataclass(frozen=True)
class Download:
    url: str
    filename: str
    size: int


class PrivateApt:
    """apt-get with its own sources, lists and cache under ROOT."""

    def __init__(self, root: Path, suite: str, uris: list[str]):
        self.root, self.suite, self.uris = root, suite, uris
        for sub in ("lists/partial", "archives/partial", "parts", "prefs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
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

    def _failed(self, args: tuple[str, ...], lines: list[str]) -> EnvironmentFailure:
        errors = [ln for ln in lines if ln.startswith(("E:", "W:", "Err:"))] or lines or ["(no output)"]
        return EnvironmentFailure(f"apt-get {args[0]} failed for {self.suite}: {errors[-1]}")

    def run(self, *args: str, cwd: Path | None = None, label: str = "") -> list[str]:
        """apt-get ARGS; its download status drives a bar named LABEL; the other output lines."""
        bar = current().bar

        def on_line(line: str) -> None:
            # APT::Status-Fd lines: "dlstatus:FILE:PERCENT:TEXT" (apt-get's status protocol).
            if label and line.startswith("dlstatus:"):
                try:
                    bar(label, float(line.split(":")[2]) / 100)
                except (IndexError, ValueError):
                    pass

        argv = ["apt-get", *self.options(), "-o", "APT::Status-Fd=1", *args]
        try:
            code, lines = proc.stream(argv, on_line, cwd=cwd, timeout=TIMEOUT)
        except EnvironmentFailure as e:
            raise EnvironmentFailure(f"{e} (fetch-xen needs apt-get: a Debian machine)") from e
        lines = [ln for ln in lines if not ln.startswith(("dlstatus:", "pmstatus:"))]
        if code != 0:
            raise self._failed(args, lines)
        if label:
            bar(label, 1.0)
        return lines

    def update(self) -> None:
        """The suite's package lists, once (later fetches reuse them)."""
        if any((self.root / "lists").glob("*Packages*")):
            return
        current().note(f"fetch-xen: {self.suite} package lists from {', '.join(self.uris)} "
                       f"into {self.root}/lists (once)")
        lines = self.run("update", label=f"{self.suite} lists")
        fetched = [ln for ln in lines if ln.startswith("Fetched ")]
        if fetched:
            current().note(f"  fetched {fetched[-1].split(' in ')[0].removeprefix('Fetched ')}")

    def downloads(self, *args: str) -> list[Download]:
        """What ``apt-get --print-uris ARGS`` would download: ``'URL' FILE SIZE HASH`` lines."""
        found = []
        for line in self.run("--print-uris", *args):
            m = re.match(r"'([^']+)' (\S+) (\d+)", line)
            if m:
                found.append(Download(m[1], m[2], int(m[3])))
        return found


def _announce(name: str, what: list[Download], dest: Path) -> None:
    host = urlsplit(what[0].url).netloc if what else "Debian"
    files = ", ".join(unquote(d.filename) for d in what)
    current().note(f"fetch-xen: {name}: {TARGETS[name].what}: {files} "
                   f"({human(sum(d.size for d in what))}) from {host} into {dest}")


def fetch_source(apt: PrivateApt, name: str, dest: Path) -> None:
    import tarfile  # only here: xentree (every command) imports this module

    work = Path(tempfile.mkdtemp(prefix="src-", dir=dest.parent))
    try:
        args = ("source", "--download-only", "xen")
        _announce(name, apt.downloads(*args), dest)
        apt.run(*args, cwd=work, label="xen source")
        origs = sorted(work.glob("xen_*.orig.tar.*"))
        if not origs:
            raise EnvironmentFailure("the xen source package has no .orig tarball")
        version = origs[0].name.split("_")[1].rsplit(".orig", 1)[0]
        current().note(f"  unpacking {origs[0].name} into a git repository of one commit "
                       "(fixed author and date: the same hash on every machine)")
        unpack = work / "unpack"
        with tarfile.open(origs[0]) as tar:
            tar.extractall(unpack, filter="tar")
        tops = [p for p in unpack.iterdir() if p.is_dir()]
        tree = tops[0] if len(tops) == 1 else unpack
        if not (tree / "xen" / "include" / "public" / "xen.h").exists():
            raise EnvironmentFailure(f"{origs[0].name} holds no xen/include/public/xen.h")
        git_init(tree, f"Xen {version} (Debian source package xen, upstream tarball)")
        tree.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def git_init(tree: Path, message: str) -> None:
    """Make TREE a git repository of one commit (tag ``base``) with a fixed author and date."""
    env = {
        "GIT_AUTHOR_NAME": TREE_IDENT[0], "GIT_AUTHOR_EMAIL": TREE_IDENT[1],
        "GIT_COMMITTER_NAME": TREE_IDENT[0], "GIT_COMMITTER_EMAIL": TREE_IDENT[1],
        "GIT_AUTHOR_DATE": TREE_DATE, "GIT_COMMITTER_DATE": TREE_DATE,
        "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
    }
    for args in (["init", "-q", "-b", "master"],
                 ["add", "-A", "-f"],
                 ["-c", "core.autocrlf=false", "commit", "-q", "--no-gpg-sign", "-m", message],
                 ["tag", "base"]):
        res = proc.run(["git", *args], cwd=tree, env=env, timeout=TIMEOUT)
        if res.returncode != 0:
            raise EnvironmentFailure(f"git {args[0]} failed in {tree}: {res.stderr.strip()[:200]}")


def fetch_headers(apt: PrivateApt, name: str, dest: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="hdr-", dir=dest.parent))
    try:
        _announce(name, apt.downloads("download", "libxen-dev"), dest)
        apt.run("download", "libxen-dev", cwd=work, label="libxen-dev")
        debs = sorted(work.glob("libxen-dev_*.deb"))
        if not debs:
            raise EnvironmentFailure("apt-get download gave no libxen-dev .deb")
        res = proc.run(["dpkg-deb", "-x", str(debs[0]), str(work / "root")], timeout=TIMEOUT)
        if res.returncode != 0:
            raise EnvironmentFailure(f"dpkg-deb -x {debs[0].name} failed: {res.stderr.strip()[:200]}")
        inc = work / "root" / "usr" / "include" / "xen"
        if not (inc / "xen.h").exists():
            raise EnvironmentFailure(f"{debs[0].name} holds no usr/include/xen/xen.h")
        (inc / ".xenpatch-source").write_text(debs[0].name + "\n")
        inc.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch(name: str, cache: Path | None = None) -> Path:
    """NAME (a key of TARGETS) in CACHE (default_cache()), fetched first when it is not there."""
    if name not in TARGETS:
        raise UsageError(f"fetch-xen: unknown name {name!r} (known: {', '.join(TARGETS)})")
    cache = (cache or default_cache()).resolve()
    dest = cache / name
    if dest.exists():
        return dest
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock_file = open(cache / ".lock", "w")
    except OSError as e:
        raise EnvironmentFailure(f"fetch-xen: cannot use the cache {cache}: {e.strerror}") from e
    with lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if dest.exists():  # another process fetched it meanwhile
            return dest
        target = TARGETS[name]
        apt = PrivateApt(cache / "apt" / target.suite, target.suite, debian_uris())
        apt.update()
        (fetch_source if target.kind == "source" else fetch_headers)(apt, name, dest)
    return dest


def command(args: argparse.Namespace, config: Config) -> Result:
    """``xenpatch fetch-xen [NAME...]``: ``NAME PATH`` a line for each; 3 when apt fails."""
    cache = Path(args.cache).resolve() if getattr(args, "cache", None) else None
    names = list(dict.fromkeys(args.names)) or list(TARGETS)
    bad = [n for n in names if n not in TARGETS]
    if bad:
        raise UsageError(f"fetch-xen: unknown name {bad[0]!r} (known: {', '.join(TARGETS)})")
    return Result(text="".join(f"{name} {fetch(name, cache)}\n" for name in names))
