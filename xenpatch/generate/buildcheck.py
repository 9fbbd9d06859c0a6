"""Self-check (e), ``--build-check``: libxenguest, libxl and xl compile on the patched tree.

Runs in a scratch checkout of the generated branch: Xen's top-level
``./configure`` with everything optional disabled (no hypervisor, stubdoms,
docs, firmware, QEMU, OCaml, Go), ``make -C tools/include``, the libraries
of ``tools/libs`` (its Makefile builds them in dependency order: toolcore
... ctrl, guest, store, light, util) and ``tools/xl``.  Needs gcc, make,
pkgconf, python3-dev, uuid-dev, libyajl-dev, zlib1g-dev, libncurses-dev,
acpica-tools and the compression -dev packages (bz2, lzma, zstd, lzo2).
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import gitrepo, proc
from .selfcheck import CheckResult

CONFIGURE_ARGS = (
    "--disable-xen", "--disable-stubdom", "--disable-docs", "--disable-monitors",
    "--disable-ocamltools", "--disable-golang", "--disable-xsmpolicy", "--disable-seabios",
    "--disable-ipxe", "--disable-rombios", "--disable-qemu-traditional", "--disable-pvshim",
    "--disable-systemd", "--with-system-qemu=/bin/false", "--with-system-seabios=/bin/false",
)
TIMEOUT = 1800.0


def build_steps(jobs: int) -> tuple[tuple[str, list[str]], ...]:
    j = f"-j{jobs}"
    return (
        ("configure", ["./configure", *CONFIGURE_ARGS]),
        ("tools/include", ["make", "-C", "tools/include", j]),
        ("tools/libs", ["make", "-C", "tools/libs", j]),
        ("tools/xl", ["make", "-C", "tools/xl", j]),
    )


def _first_error(output: str) -> str:
    lines = output.splitlines()
    for line in lines:
        if "error" in line.lower() and not line.lstrip().startswith("checking"):
            return line.strip()
    return (lines or ["(no output)"])[-1].strip()


def build_tree(src: Path, jobs: int = 0) -> CheckResult:
    """Build libxenguest, libxl and xl in the checked-out Xen tree SRC."""
    jobs = jobs or os.cpu_count() or 1
    done = []
    for name, argv in build_steps(jobs):
        res = proc.run(argv, cwd=src, timeout=TIMEOUT)
        if res.returncode != 0:
            return CheckResult("build", False, f"{name} failed",
                               (_first_error(res.stderr + "\n" + res.stdout),))
        done.append(name)
    return CheckResult("build", True, "libxenguest, libxl and xl build", (", ".join(done),))


def build_check(work: Path, scratch: gitrepo.git.Repo, head: str) -> CheckResult:
    """Check out HEAD of the scratch repository under WORK and build it."""
    tree = work / "build"
    clone = gitrepo.scratch_clone(scratch, tree, bare=False)
    gitrepo.checkout(clone, head)
    return build_tree(tree)
