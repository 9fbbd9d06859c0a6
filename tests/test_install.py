"""xenpatch as users install it: a wheel built with pip, installed into a fresh virtualenv outside
the checkout, run from an empty directory with no config.toml (issue 10, acceptance 1).

Every command runs as a subprocess of the installed console script with no PYTHONPATH, so
nothing of the checkout is on the path: templates, the shipped change and the shipped
suppressions must come from the wheel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from xenpatch import fetchxen

ROOT = Path(__file__).resolve().parent.parent
EPOCH = "1751328000"  # 2025-07-01: fixed dates, so the two generates agree


def _clean_env() -> dict[str, str]:
    """os.environ without what points into the checkout (conftest's PYTHONPATH would let pip
    take the checkout's xenpatch.egg-info for an installed xenpatch)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("XENPATCH_", "PYTHON", "GIT_", "VIRTUAL_ENV"))}


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("env", _clean_env())
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    proc = _run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(dist), str(ROOT)],
                cwd=dist)
    assert proc.returncode == 0, proc.stderr
    # No setuptools warning (license table, packages not listed, ...): -v shows the backend's output.
    assert not re.search(r"\w+Warning|!!", proc.stdout + proc.stderr), proc.stdout[-3000:]
    (whl,) = dist.glob("xenpatch-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv (not below the checkout) with the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    assert ROOT not in venv.parents
    proc = _run([sys.executable, "-m", "venv", str(venv)])
    assert proc.returncode == 0, proc.stderr
    proc = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-qq", str(wheel)])
    assert proc.returncode == 0, proc.stderr
    return venv / "bin"


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """An empty working directory and a user's environment: no XENPATCH_* but the cache of
    fetched trees, no PYTHONPATH, a git identity."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.org\n")
    env = _clean_env()
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"), SOURCE_DATE_EPOCH=EPOCH,
               XENPATCH_CACHE=str(fetchxen.default_cache()),
               XDG_CACHE_HOME=str(fetchxen.default_cache().parent))
    work = tmp_path_factory.mktemp("work")
    return work, env


def test_the_wheel_holds_every_template_and_default(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in (ROOT / "templates").rglob("*"):
        if f.is_file():
            assert f"xenpatch/_templates/{f.relative_to(ROOT / 'templates')}" in names
    for sub in ("defaults", "abi/c/include"):
        for f in (ROOT / "xenpatch" / sub).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                assert f"{f.relative_to(ROOT)}" in names


def test_pyproject_lists_every_package() -> None:
    """setuptools warns about (and a wheel may lose) data in a directory not listed."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = set()
    for base, prefix in ((ROOT / "xenpatch", "xenpatch"), (ROOT / "templates", "xenpatch._templates")):
        for d in [base, *base.rglob("*")]:
            if d.is_dir() and d.name != "__pycache__" and any(f.is_file() for f in d.rglob("*")):
                rel = d.relative_to(base)
                on_disk.add(".".join([prefix, *rel.parts]))
    assert on_disk == listed


def test_a_user_workflow_from_the_installed_wheel(installed: Path, user) -> None:
    work, env = user
    xp = str(installed / "xenpatch")
    where = _run([str(installed / "python"), "-c", "import xenpatch; print(xenpatch.__file__)"],
                 cwd=work, env=env)
    assert str(installed.parent) in where.stdout and str(ROOT) not in where.stdout
    assert not (work / "config.toml").exists()

    # generate: the shipped default change, on the fetched tree (none is configured)
    gen = _run([xp, "generate"], cwd=work, env=env)
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.startswith("xenpatch generate sif-hvm-ghcb: bit 5, branch xenpatch/sif-hvm-ghcb-v1")
    assert "  ok   abi-check: no new error-level finding" in gen.stdout
    first = sorted(p.name for p in (work / "series").iterdir())
    assert len(first) == 4 and first[0] == "0000-cover-letter.patch"
    define = (work / "series" / first[1]).read_text()
    assert re.search(r"^\+#define SIF_HVM_GHCB +\(1<<5\)", define, re.M)

    # send: a dry run writes the mbox into the series directory, sends nothing
    send = _run([xp, "send", "series"], cwd=work, env=env)
    assert send.returncode == 0, send.stderr
    assert "To: xen-devel@lists.xenproject.org" in send.stdout
    assert "dry run: nothing sent; 4 messages written to series/xenpatch-dry-run.mbox" in send.stdout
    assert (work / "series" / "xenpatch-dry-run.mbox").stat().st_size > 0
    quiet = _run([xp, "send", "-q", "series"], cwd=work, env=env)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")

    # maintainers of the header patch, from the tree's MAINTAINERS
    maint = _run([xp, "maintainers", f"series/{first[1]}"], cwd=work, env=env)
    assert maint.returncode == 0, maint.stderr
    assert maint.stdout.splitlines()[0] == "To: xen-devel@lists.xenproject.org"
    assert any(line.startswith("Cc: ") for line in maint.stdout.splitlines())

    # abi check: stock 4.17.5 is clean with the suppressions shipped in the wheel
    check = _run([xp, "abi", "check"], cwd=work, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1].startswith("0 errors, "), check.stdout

    # abi diff of the two fetched header directories
    h417, h420 = (fetchxen.fetch(n) for n in ("headers-4.17", "headers-4.20"))
    diff = _run([xp, "abi", "diff", str(h417), str(h420), "--arch", "x86_64"], cwd=work, env=env)
    assert diff.returncode == 1, diff.stderr  # 4.20 breaks some of 4.17's tools-only ABI
    assert re.search(r"^\d+ changes: \d+ breaking, \d+ compatible", diff.stdout.splitlines()[-1])
    assert "macro-value-changed: __XEN_LATEST_INTERFACE_VERSION__: 265728 -> 267008" in diff.stdout

    # generate again into the same --out (which now holds send's files too): replaced whole
    again = _run([xp, "-q", "generate", "--out", "series"], cwd=work, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "" and again.stderr == ""  # -q: nothing but errors
    assert sorted(p.name for p in (work / "series").iterdir()) == first
    assert (work / "series" / first[1]).read_text() == define


def test_installed_help_and_fetch_xen(installed: Path, user) -> None:
    work, env = user
    xp = str(installed / "xenpatch")
    for cmd in (["--help"], ["generate", "--help"], ["abi", "diff", "--help"], ["fetch-xen", "--help"]):
        proc = _run([xp, *cmd], cwd=work, env=env)
        assert proc.returncode == 0 and "example:\n  xenpatch " in proc.stdout, (cmd, proc.stdout)
    fetch = _run([xp, "fetch-xen", "xen-4.17"], cwd=work, env=env)
    assert fetch.returncode == 0, fetch.stderr
    assert fetch.stdout == f"xen-4.17 {fetchxen.default_cache().resolve() / 'xen-4.17'}\n"
    bad = _run([xp, "fetch-xen", "xen-9.9"], cwd=work, env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "xen-9.9" in bad.stderr
