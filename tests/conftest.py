"""Shared fixtures and helpers: real Xen trees fetched from Debian by scripts/fetch_xen.py (cached),
the command line as a user runs it, one-line errors, a git identity, golden files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FETCH = ROOT / "scripts" / "fetch_xen.py"
# A full xen.git (not in CI): `fetch` of xen-project/xen, or XENPATCH_XEN_GIT.
XEN_GIT = Path(os.environ.get("XENPATCH_XEN_GIT", "/work/.mirror/xen-project+xen/repo"))

# Subprocesses (`python -m xenpatch.cli ...`) run this checkout's xenpatch,
# installed or not.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


def run_cli(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``python -m xenpatch.cli ARGS`` in a subprocess, as a user runs it: this checkout's
    xenpatch, none of the caller's own ``XENPATCH_*`` settings, ENV added; CWD: the
    checkout unless given."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("XENPATCH_")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "xenpatch.cli", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=full, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *fragments: str,
                   pattern: str | None = None) -> str:
    """The one line PROC wrote to stderr, after checking the exit CODE, that it is one line
    and no traceback, and that it holds every FRAGMENT and matches PATTERN (a regex)."""
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if pattern is not None:
        assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def check_golden(path: Path, data: str | bytes, regen: bool) -> None:
    """DATA equals the golden file PATH; with ``--regen-golden`` (REGEN), PATH is written first."""
    if regen:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    assert path.exists(), f"{path}: missing; run pytest --regen-golden"
    expected = path.read_bytes() if isinstance(data, bytes) else path.read_text(encoding="utf-8")
    assert data == expected, f"{path.name} differs from {path}"


@pytest.fixture
def gitconfig(tmp_path: Path) -> Path:
    """A user's global git config (``GIT_CONFIG_GLOBAL``) with only an identity."""
    cfg = tmp_path / "gitconfig"
    cfg.write_text("[user]\n\tname = Test User\n\temail = test@example.org\n")
    return cfg


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true", default=False,
                     help="rewrite golden files under tests/golden/ instead of comparing")


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("regen_golden"))


def _fetched(name: str) -> Path:
    proc = subprocess.run([sys.executable, str(FETCH), name], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"scripts/fetch_xen.py {name} failed: {proc.stderr.strip()}")
    return Path(proc.stdout.split()[1])


@pytest.fixture(scope="session")
def xen_tree() -> Path:
    """The whole Xen 4.17.5 tree of Debian bookworm, a git repo with one commit (tag ``base``).

    Shared by all tests: never modify it; use ``xen_clone`` for a private copy."""
    return _fetched("xen-4.17")


@pytest.fixture(scope="session")
def headers_417() -> Path:
    """/usr/include/xen of bookworm's libxen-dev (4.17)."""
    return _fetched("headers-4.17")


@pytest.fixture(scope="session")
def headers_420() -> Path:
    """/usr/include/xen of trixie's libxen-dev (4.20)."""
    return _fetched("headers-4.20")


@pytest.fixture
def xen_clone(xen_tree: Path, tmp_path: Path) -> Path:
    """A private clone of the 4.17.5 tree (objects shared, work tree checked out)."""
    dest = tmp_path / "xen"
    subprocess.run(["git", "clone", "-q", "--shared", str(xen_tree), str(dest)], check=True)
    return dest


@pytest.fixture(scope="session")
def xen_git() -> Path:
    """A full xen.git with history (local only; CI has none)."""
    if not (XEN_GIT / "HEAD").exists() and not (XEN_GIT / ".git").exists():
        pytest.skip(f"no xen.git at {XEN_GIT} (set XENPATCH_XEN_GIT); local-only test")
    return XEN_GIT


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Nothing the tests ran may have replaced /dev/null (a rename over it, as root, would)."""
    if not Path("/dev/null").is_char_device():
        session.exitstatus = 1
        print("\nconftest: /dev/null is no longer a character device", file=sys.stderr)
