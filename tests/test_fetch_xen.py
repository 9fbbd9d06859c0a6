"""xenpatch.fetchxen (and its thin caller scripts/fetch_xen.py): real Xen from Debian through a
private apt configuration."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xenpatch import fetchxen as fetch_xen

ROOT = Path(__file__).resolve().parent.parent


def _apt_state() -> str:
    """A digest of the machine's apt configuration and lists."""
    h = hashlib.sha256()
    for base in (Path("/etc/apt"), Path("/var/lib/apt/lists")):
        for p in sorted(base.rglob("*")):
            if p.is_file() and "partial" not in p.parts and p.name != "lock":
                st = p.stat()
                h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def test_archive_uris_come_from_the_machine_sources() -> None:
    uris = fetch_xen.debian_uris()
    machine = ""
    for p in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        if p.is_file():
            machine += p.read_text(errors="replace")
    assert uris
    for uri in uris:
        assert uri in machine
        assert "security" not in uri.rsplit("/", 1)[-1]


def test_headers_fetch_uses_a_private_apt_and_leaves_the_machine_alone(tmp_path: Path) -> None:
    before = _apt_state()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_xen.py"),
                           "--cache", str(tmp_path), "headers-4.20"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    name, path = proc.stdout.split()
    assert name == "headers-4.20"
    # It says what it fetches, how big and where (no bar: stderr is not a terminal).
    assert "fetch-xen: trixie package lists from http" in proc.stderr
    assert re.search(r"^  fetched \d+(\.\d)? [kM]B$", proc.stderr, re.M), proc.stderr
    assert re.search(rf"^fetch-xen: headers-4.20: .*libxen-dev_4\.20[^ ]*\.deb \(\d+ kB\) from \S+ "
                     rf"into {re.escape(str(tmp_path))}/headers-4.20$", proc.stderr, re.M), proc.stderr
    assert "[#" not in proc.stderr and "\r" not in proc.stderr
    inc = Path(path)
    assert (inc / "xen.h").is_file() and (inc / "arch-x86" / "xen.h").is_file()
    assert (inc / ".xenpatch-source").read_text().startswith("libxen-dev_4.20")
    sources = (tmp_path / "apt" / "trixie" / "sources.list").read_text()
    assert " trixie main" in sources and "signed-by=" in sources
    assert _apt_state() == before
    # Cached: a second run prints the same path without apt.
    again = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_xen.py"),
                            "--cache", str(tmp_path), "headers-4.20"], capture_output=True, text=True)
    assert again.stdout == proc.stdout


def test_tree_commit_is_reproducible(tmp_path: Path) -> None:
    shas = []
    for n in range(2):
        tree = tmp_path / f"t{n}"
        (tree / "xen").mkdir(parents=True)
        (tree / "xen" / "a.h").write_text("#define A 1\n")
        fetch_xen.git_init(tree, "Xen test")
        shas.append(subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True,
                                   text=True, check=True).stdout)
    assert shas[0] == shas[1]


def test_fetched_tree_is_a_whole_xen_417(xen_tree: Path) -> None:
    assert (xen_tree / "xen" / "include" / "public" / "xen.h").is_file()
    assert (xen_tree / "MAINTAINERS").is_file() and (xen_tree / "scripts" / "get_maintainer.pl").is_file()
    assert (xen_tree / "tools" / "libs" / "light" / "libxl_types.idl").is_file()
    log = subprocess.run(["git", "log", "--format=%s", "base"], cwd=xen_tree, capture_output=True,
                         text=True, check=True).stdout
    assert log.startswith("Xen 4.17.5")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=xen_tree, capture_output=True,
                            text=True, check=True).stdout
    assert status == ""


def test_unknown_name_is_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_xen.py"), "--cache",
                           str(tmp_path), "xen-9.9"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown name 'xen-9.9'" in proc.stderr


# xen-compat.h of each release (fetch_xen.py itself refuses a package without xen.h).
@pytest.mark.parametrize("name, interface", [("headers-4.17", "0x00040e00"),
                                             ("headers-4.20", "0x00041300")])
def test_installed_headers(name: str, interface: str, request: pytest.FixtureRequest) -> None:
    """Each name brings that release's headers: its latest interface version, and the
    tree's 4.17 headers are the 4.17 package's."""
    inc = request.getfixturevalue(name.replace("-", "_").replace(".", ""))
    compat = (inc / "xen-compat.h").read_text()
    assert f"#define __XEN_LATEST_INTERFACE_VERSION__ {interface}\n" in compat
    if name == "headers-4.17":
        tree = request.getfixturevalue("xen_tree") / "xen/include/public/xen-compat.h"
        assert tree.read_text() == compat


def test_progress_bar_only_on_a_terminal() -> None:
    import io

    from xenpatch.progress import StderrProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, bar in ((Terminal(), True), (io.StringIO(), False)):
        p = StderrProgress(stream)
        p.note("fetch-xen: x")
        for f in (0.0, 0.0, 0.5, 1.0, 1.0):  # apt repeats its status lines
            p.bar("x", f)
        p.note("done")
        text = stream.getvalue()
        assert text.startswith("fetch-xen: x\n") and text.endswith("done\n")
        assert (text.count("100%") == 1) == bar
        assert ("\r  x [###############...............]  50%" in text) == bar


def test_quiet_fetch_prints_only_the_paths(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", "-q", "fetch-xen", "xen-4.17"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("xen-4.17 /") and proc.stdout.count("\n") == 1
