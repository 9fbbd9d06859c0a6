"""scripts/setup.sh brings every Debian package the suite and the demo use onto a Debian 12
machine that has none of them.

How: every program, header, perl module and data file the tests, the demo and
xenpatch run or read is listed below with who needs it; each is mapped to the
package that ships it here (``dpkg -S``).  Then apt computes what
``apt-get install --no-install-recommends APT_PACKAGES`` (setup.sh's own call)
installs on a bookworm machine with an EMPTY dpkg status, from bookworm's
package lists (the private apt root fetch-xen keeps; the machine's apt is not
used): every needed package must be in that set.  Recommends do not count,
as setup.sh does not install them: a tool that needs a Recommends (git
send-email: Mail::Address) fails here until setup.sh names it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from xenpatch import fetchxen

ROOT = Path(__file__).resolve().parent.parent

# What is used -> who uses it.  Programs are looked up on PATH.
PROGRAMS = {
    "cpp": "abi (preprocess)", "gcc": "abi tests (gcc -m32/-m64), --build-check",
    "g++": "headers++.chk", "clang": "abi tests (arm targets)", "ld": "gcc",
    "git": "everything", "perl": "get_maintainer.pl, git send-email",
    "make": "--build-check", "bison": "--build-check", "flex": "--build-check",
    "iasl": "--build-check (acpica-tools)", "pkg-config": "--build-check",
    "public-inbox-httpd": "review tests (archive on 127.0.0.1)",
    "abidw": "abi tests (libabigail)", "abidiff": "abi tests (libabigail)",
    "apt-get": "fetch-xen", "dpkg-deb": "fetch-xen", "gpgv": "fetch-xen (apt's signature check)",
    "openssl": "SMTP tests (certificates)",
}
FILES = {
    "/usr/bin/python3": "xenpatch (Debian's; PATH may put another python3 first)",
    "/usr/lib/git-core/git-send-email": "mail tests (git send-email threading)",
    "/usr/include/x86_64-linux-gnu/gnu/stubs-32.h": "gcc -m32 (libc6-dev-i386)",
    "/usr/include/stdint.h": "gcc -m64",
    "/usr/include/uuid/uuid.h": "--build-check", "/usr/include/yajl/yajl_gen.h": "--build-check",
    "/usr/include/zlib.h": "--build-check", "/usr/include/ncurses.h": "--build-check",
    "/usr/include/bzlib.h": "--build-check", "/usr/include/lzma.h": "--build-check",
    "/usr/include/zstd.h": "--build-check", "/usr/include/lzo/lzo1x.h": "--build-check",
    "/usr/share/keyrings/debian-archive-keyring.gpg": "fetch-xen",
    "/usr/sbin/update-ca-certificates": "pip, SMTP TLS (makes /etc/ssl/certs/ca-certificates.crt)",
}
PERL_MODULES = {
    "Mail::Address": "git send-email", "Email::Valid": "git send-email",
    "Authen::SASL": "git send-email (AUTH)", "IO::Socket::SSL": "git send-email (TLS)",
    "Getopt::Long": "get_maintainer.pl", "Plack": "public-inbox-httpd",
    "PublicInbox::WWW": "public-inbox-httpd", "DBD::SQLite": "public-inbox",
}
PYTHON_PIECES = {
    "venv": "setup.sh, the install and floor tests (python3 -m venv)",
    "ensurepip": "python3 -m venv", "lzma": "fetch-xen (xz tarball)", "sqlite3": "abi cache",
}


def apt_packages() -> list[str]:
    """APT_PACKAGES of scripts/setup.sh, read by bash itself."""
    script = ROOT / "scripts" / "setup.sh"
    out = subprocess.run(
        ["bash", "-c", f'eval "$(sed -n "/^APT_PACKAGES=(/,/^)/p" {script})"; '
                       'printf "%s\\n" "${APT_PACKAGES[@]}"'],
        capture_output=True, text=True, check=True).stdout
    return out.split()


def owners(paths: dict[str, str]) -> dict[str, str]:
    """package -> why, for PATHS (path -> why), from one ``dpkg -S`` over the paths as given
    and as resolved (usrmerge: /bin is /usr/bin)."""
    candidates = {c: p for p in paths for c in (p, os.path.realpath(p))}
    proc = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True)
    found: dict[str, str] = {}
    shipped: set[str] = set()
    for line in proc.stdout.splitlines():
        pkgs, _, path = line.partition(": ")
        if path in candidates:
            shipped.add(candidates[path])
            for pkg in pkgs.split(","):
                found.setdefault(pkg.strip().split(":")[0], paths[candidates[path]])
    unshipped = [p for p in paths if p not in shipped]
    assert not unshipped, f"no Debian package ships {unshipped}"
    return found


@pytest.fixture(scope="module")
def needed() -> dict[str, str]:
    """package -> why, for everything above."""
    paths: dict[str, str] = {}
    for prog, why in PROGRAMS.items():
        path = shutil.which(prog)
        assert path, f"{prog} ({why}) is not on PATH: run scripts/setup.sh"
        paths[path] = f"{prog}: {why}"
    for path, why in FILES.items():
        assert Path(path).exists(), f"{path} ({why}) is missing: run scripts/setup.sh"
        paths[path] = f"{path}: {why}"
    for mod, why in PERL_MODULES.items():
        proc = subprocess.run(["perl", f"-M{mod}", "-e", f'print $INC{{"{mod.replace("::", "/")}.pm"}}'],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"perl module {mod} ({why}) is missing: run scripts/setup.sh"
        paths[proc.stdout.strip()] = f"perl {mod}: {why}"
    for mod, why in PYTHON_PIECES.items():
        proc = subprocess.run(["/usr/bin/python3", "-c", f"import {mod}; print({mod}.__file__)"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"python3 module {mod} ({why}) is missing"
        paths[proc.stdout.strip()] = f"python3 {mod}: {why}"
    return owners(paths)


def closure_on_empty_bookworm(packages: list[str], tmp: Path) -> set[str]:
    """What apt-get install --no-install-recommends PACKAGES installs on a bookworm machine
    with nothing installed (an empty dpkg status), from bookworm's package lists."""
    cache = fetchxen.default_cache()
    root = cache / "apt" / "bookworm"
    if not any((root / "lists").glob("*Packages*")):
        fetchxen.fetch("headers-4.17")  # brings bookworm's lists into the private apt root
    apt = fetchxen.PrivateApt(root, "bookworm", fetchxen.debian_uris())
    empty = tmp / "status"
    empty.write_text("")
    argv = ["apt-get", *apt.options(), "-o", f"Dir::State::status={empty}",
            "-o", "APT::Install-Recommends=0", "install", "--simulate", *packages]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1:]
    return {line.split()[1].split(":")[0] for line in proc.stdout.splitlines() if line.startswith("Inst ")}


@pytest.mark.skipif(not Path("/var/lib/dpkg/status").exists(), reason="not a Debian machine")
def test_setup_installs_every_package_the_suite_and_demo_use(tmp_path: Path,
                                                            needed: dict[str, str]) -> None:
    packages = apt_packages()
    assert "git-email" in packages and "public-inbox" in packages and "abigail-tools" in packages
    installed = closure_on_empty_bookworm(packages, tmp_path)
    assert len(installed) > 200  # a whole toolchain from nothing, not a no-op simulation
    missing = {pkg: why for pkg, why in needed.items() if pkg not in installed}
    assert not missing, f"setup.sh's APT_PACKAGES do not bring: {missing}"


def test_a_recommends_only_package_is_caught(tmp_path: Path, needed: dict[str, str]) -> None:
    """The check would have caught issue 10's bug: git-email does not bring Mail::Address
    (libmailtools-perl is only its Recommends), which git send-email needs."""
    assert "libmailtools-perl" in needed
    assert "libmailtools-perl" not in closure_on_empty_bookworm(["git", "git-email"], tmp_path)
