"""Shared fixtures: real Xen trees fetched from Debian by scripts/fetch_xen.py (cached)."""

from __future__ import annotations

import os
import subprocess
import sys
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
