"""Compile public headers the way Xen's own ``xen/include/Makefile`` checks them.

Xen's build (``xen/include/Makefile``, targets ``headers.chk``,
``headers99.chk`` and ``headers++.chk``, run when the target arch is the
build arch) compiles each public header on its own:

* ``headers.chk``: ``$(CC) -x c -ansi -Wall -Werror -include stdint.h -S -o
  /dev/null HEADER`` for every ``public/*.h`` and ``public/*/*.h`` except
  ``dom0_ops.h``, ``arch-*``, ``*ctl.h``, ``xsm/*``, ``*hvm/save.h`` and the
  C99 headers below;
* ``headers99.chk``: ``echo '#include "HEADER"' | $(CC) -x c -std=c99 -Wall
  -Werror -include stdint.h [-include string.h] -S -o /dev/null -`` for
  ``io/9pfs.h`` and ``io/pvcalls.h`` (their ``-prereq`` is ``string``);
* ``headers++.chk``: ``echo '#include "HEADER"' | $(CXX) -x c++
  -std=gnu++98 -Wall -Werror -D__XEN_TOOLS__ -include stdint.h -include
  public/xen.h [-include cstring] -S -o /dev/null -`` for every header
  except ``dom0_ops.h`` and ``arch-*``.

Only ``header_sets`` is pure; ``check_headers`` runs the compilers.
"""

from __future__ import annotations

import fnmatch
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import proc

C99_HEADERS = ("io/9pfs.h", "io/pvcalls.h")
# Make's filter-out patterns of xen/include/Makefile, relative to public/.
_ALL_FILTER = ("dom0_ops.h", "arch-*")
_ANSI_FILTER = ("*ctl.h", "xsm/*", "*hvm/save.h") + _ALL_FILTER + C99_HEADERS
_PREREQ = {"io/9pfs.h": "string", "io/pvcalls.h": "string"}


@dataclass(frozen=True)
class HeaderResult:
    check: str  # headers.chk | headers99.chk | headers++.chk
    header: str  # relative to xen/include/public/
    ok: bool
    error: str = ""  # the compiler's first error line


def _listed(header: str) -> bool:
    """Makefile's public-list-headers: public/*.h and public/*/*.h only."""
    return header.endswith(".h") and header.count("/") <= 1


def _filtered(header: str, patterns: Sequence[str]) -> bool:
    # Make's % matches across '/', like fnmatch's * does.
    return any(fnmatch.fnmatchcase(header, p) for p in patterns)


def header_sets(header: str) -> tuple[str, ...]:
    """Which of Xen's header checks compile HEADER."""
    if not _listed(header):
        return ()
    out = []
    if not _filtered(header, _ANSI_FILTER):
        out.append("headers.chk")
    if header in C99_HEADERS:
        out.append("headers99.chk")
    if not _filtered(header, _ALL_FILTER):
        out.append("headers++.chk")
    return tuple(out)


def _argv(check: str, header: str, public: Path, cc: str, cxx: str) -> tuple[list[str], str | None]:
    # Xen's Makefile writes to /dev/null; as root, a failing gcc unlinks its
    # output file, so a scratch file in the private directory stands in.
    prereq = _PREREQ.get(header)
    if check == "headers.chk":
        return [cc, "-x", "c", "-ansi", "-Wall", "-Werror", "-include", "stdint.h",
                "-S", "-o", str(public.parent / "out.s"), str(public / header)], None
    stdin = f'#include "{public / header}"\n'
    if check == "headers99.chk":
        extra = ["-include", f"{prereq}.h"] if prereq else []
        return [cc, "-x", "c", "-std=c99", "-Wall", "-Werror", "-include", "stdint.h", *extra,
                "-S", "-o", str(public.parent / "out.s"), "-"], stdin
    extra = ["-include", f"c{prereq}"] if prereq else []
    return [cxx, "-x", "c++", "-std=gnu++98", "-Wall", "-Werror", "-D__XEN_TOOLS__",
            "-include", "stdint.h", "-include", str(public / "xen.h"), *extra,
            "-S", "-o", str(public.parent / "out.s"), "-"], stdin


def check_headers(files: Mapping[str, bytes], headers: Sequence[str], *, cc: str = "gcc",
                  cxx: str = "g++") -> tuple[HeaderResult, ...]:
    """Compile each of HEADERS (relative to public/) from FILES (all public headers of the
    snapshot, relative to public/) in every check that Xen's Makefile runs on it."""
    out: list[HeaderResult] = []
    with tempfile.TemporaryDirectory(prefix="xenpatch-hdrchk-") as tmp:
        public = Path(tmp) / "xen" / "include" / "public"
        for rel, data in files.items():
            dest = public / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        for header in sorted(headers):
            for check in header_sets(header):
                argv, stdin = _argv(check, header, public, cc, cxx)
                res = proc.run(argv, input=stdin, cwd=tmp)
                err = ""
                if res.returncode != 0:
                    lines = [ln for ln in res.stderr.splitlines() if "error" in ln] or \
                        res.stderr.splitlines() or ["(no output)"]
                    err = lines[0].replace(str(public) + "/", "")
                out.append(HeaderResult(check, header, res.returncode == 0, err))
    return tuple(out)
