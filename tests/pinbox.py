"""A real public-inbox v2 inbox and its public-inbox-httpd on 127.0.0.1, for tests.

Debian's ``public-inbox`` does the work: ``public-inbox-init -V2`` makes the
inbox, ``public-inbox-mda`` delivers each mail into it (indexed), and
``public-inbox-httpd`` serves it.  HOME, PI_CONFIG and the XDG directories
point into the inbox's own directory, so nothing outside it changes.  The
server is started on a free port and stopped by its PID.

    inbox = PublicInbox(tmp_path / "pi")
    inbox.add_mbox(Path("thread.mbox"))
    with inbox.serving() as url:   # http://127.0.0.1:PORT/xen-devel/
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from xenpatch.review.mbox import split_mbox

TOOLS = ("public-inbox-init", "public-inbox-mda", "public-inbox-httpd")


def available() -> bool:
    """Debian's public-inbox tools are on PATH."""
    return all(shutil.which(t) for t in TOOLS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PublicInbox:
    """A v2 inbox NAME in ROOT/inbox with its own PI_CONFIG and HOME under ROOT."""

    def __init__(self, root: Path, name: str = "xen-devel",
                 address: str = "xen-devel@lists.xenproject.org") -> None:
        self.root, self.name, self.address = root, name, address
        self.inbox_dir = root / "inbox"
        self.port = free_port()
        self.pid: int | None = None
        home = root / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                    "HOME": str(home), "PI_CONFIG": str(root / "pi-config"),
                    "XDG_CONFIG_HOME": str(home / ".config"),
                    "XDG_DATA_HOME": str(home / ".local/share"),
                    "XDG_CACHE_HOME": str(home / ".cache"), "TMPDIR": str(root)}
        self._run(["public-inbox-init", "-V2", name, str(self.inbox_dir), self.url, address])
        # No SpamAssassin between the tests and the inbox.
        self._run(["git", "config", "-f", self.env["PI_CONFIG"], "publicinboxmda.spamcheck",
                   "none"])

    @property
    def url(self) -> str:
        """The inbox's base URL, with a trailing slash."""
        return f"http://127.0.0.1:{self.port}/{self.name}/"

    @property
    def epoch(self) -> Path:
        """The first epoch's git repository (``git/0.git``)."""
        return self.inbox_dir / "git" / "0.git"

    def _run(self, argv: list[str], data: bytes | None = None,
             extra: dict[str, str] | None = None) -> None:
        subprocess.run(argv, input=data, env={**self.env, **(extra or {})}, cwd=self.root,
                       check=True, capture_output=True, timeout=120)

    def add(self, message: bytes) -> None:
        """Deliver MESSAGE (one mail) into the inbox, as the list's MTA would."""
        self._run(["public-inbox-mda", "--no-precheck"], data=message,
                  extra={"ORIGINAL_RECIPIENT": self.address})

    def add_mbox(self, path: Path) -> int:
        """Deliver every mail of the mbox PATH; returns how many."""
        messages = split_mbox(path.read_bytes(), str(path), max_messages=10_000,
                              max_message_bytes=10 << 20)
        for m in messages:
            self.add(m)
        return len(messages)

    def start(self, timeout: float = 30.0) -> str:
        """Start public-inbox-httpd on 127.0.0.1 (one process, no workers) and wait until
        it answers; returns the inbox URL."""
        assert self.pid is None, "already serving"
        log = (self.root / "httpd.log").open("ab")
        proc = subprocess.Popen(["public-inbox-httpd", "-W0", "-l",
                                 f"http://127.0.0.1:{self.port}"],
                                env=self.env, cwd=self.root, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        log.close()
        self.pid = proc.pid
        self._proc = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid = None
                raise RuntimeError(f"public-inbox-httpd exited ({proc.returncode}): "
                                   + (self.root / "httpd.log").read_text(errors="replace")[-500:])
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return self.url
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"public-inbox-httpd did not answer on {self.url} in {timeout} s")

    def stop(self) -> None:
        """Stop the server by its PID (TERM, then KILL after 10 s)."""
        if self.pid is None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
        self.pid = None

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        """The inbox served while the block runs; yields its URL."""
        url = self.start()
        try:
            yield url
        finally:
            self.stop()
