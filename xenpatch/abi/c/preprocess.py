"""Run the real C preprocessor over the public headers, one arch and profile at a time.

The headers of a ``HeaderSource`` are staged into a private directory
(``<dir>/public/...``) and preprocessed with ``cpp -nostdinc -undef -dD``,
the arch's predefined macros (defined here, the way gcc and clang define
them for that target) and xenpatch's own ``include/`` instead of libc.  All
applicable headers go through one translation unit per arch, in the order
``xen.h`` first, then the rest sorted, each ``#include``d on its own line of
a wrapper file, so that line markers attribute every line and every
``#define`` to its header, and every cpp error to the header that was being
included.

Safety (DESIGN.md, "Safety rules"): ``#include`` of an absolute path, of a
path leaving the header root, or of a computed name is refused before cpp
runs; afterwards every file named in cpp's line markers must lie inside the
staged root or ``include/``.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from array import array
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ... import proc
from ...errors import EnvironmentFailure, InputError
from .. import arch as arches
from .cdefs import Define
from .macros import Undef

INCLUDE_DIR = Path(__file__).resolve().parent / "include"
WRAPPER = "xenpatch-headers.c"
PRELUDE = ("#include <stdint.h>", "#include <stddef.h>")

# DESIGN.md "--profile": tools defines __XEN_TOOLS__; guest nothing (legacy
# interface version); guest-latest the latest interface version.
PROFILE_DEFINES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "tools": (("__XEN_TOOLS__", "1"),),
    "guest": (),
    "guest-latest": (("__XEN_INTERFACE_VERSION__", "__XEN_LATEST_INTERFACE_VERSION__"),),
}

_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include(?:_next)?[ \t]*(.*?)[ \t]*(?:/[/*].*)?$', re.M)
_MARKER = re.compile(r'^# (\d+) "((?:[^"\\]|\\.)*)"((?: \d)*)$')
_MARKERS = re.compile(_MARKER.pattern, re.M)
_DEFINE = re.compile(r'^#define ([A-Za-z_]\w*)(\(([^)]*)\))?(?:\s(.*))?$')
_CPP_ERROR = re.compile(r'^(.+?):(\d+):(?:(\d+):)? (?:fatal )?error: (.*)$')
_INCLUDED_FROM = re.compile(r'^(?:In file included| +) from (.+):(\d+)[:,]$')


@dataclass(frozen=True)
class CppRun:
    """One cpp run over the wrapper: the output, and errors per top-level header."""

    text: str  # cpp -dD output
    errors: Mapping[str, str]  # header -> first error, one line "header:line:col: message"
    # with a TAIL: whether cpp got to it (a fatal error before it, "No such file", stops cpp)
    reached_tail: bool = True


def stage(files: Mapping[str, bytes], root: Path) -> Path:
    """Write FILES under ROOT/public (a private directory) and return that directory."""
    public = root / "public"
    for rel, data in files.items():
        dest = public / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    return public


def unsafe_includes(files: Mapping[str, bytes]) -> dict[str, str]:
    """Headers with an ``#include`` that could reach outside the header root: header -> reason."""
    bad: dict[str, str] = {}
    for rel, data in files.items():
        for m in _INCLUDE.finditer(data):
            target = m.group(1).decode("latin-1")
            line = data.count(b"\n", 0, m.start()) + 1
            problem = _include_problem(rel, target, files)
            if problem:
                bad[rel] = f"{rel}:{line}: unsafe include {target}: {problem}"
                break
    return bad


def _include_problem(rel: str, target: str, files: Mapping[str, bytes]) -> str | None:
    """Follow cpp's search (C11 6.10.2; gcc: quoted names next to the including file first,
    then -I public, -I ., -I include/): a candidate outside the roots is refused."""
    if len(target) < 2 or (target[0], target[-1]) not in (('"', '"'), ("<", ">")):
        return "computed include"
    name = target[1:-1]
    if name.startswith("/") or "\\" in name:
        return "absolute path"
    bases = ["public/" + posixpath.dirname(rel)] if target[0] == '"' else []
    for base in bases + ["public", ".", "include"]:
        joined = posixpath.normpath(posixpath.join(base, name))
        if joined == ".." or joined.startswith("../") or (
                base == "include" and not posixpath.join(base, name) == joined):
            return "leaves the header root"
        if joined.startswith("public/") and joined[len("public/"):] in files:
            return None
    return None


# The wrapper's line between a run's headers and its TAIL (``run_cpp``): cpp copies it to
# its output, where the text of the headers before it ends.
TAIL_MARK = "#pragma xenpatch tail"


def wrapper_text(headers: Sequence[str], tail: Sequence[str] = ()) -> str:
    """The translation unit: what an includer provides (fixed-width types, size_t; Xen's
    headers.chk uses ``-include stdint.h``), then header i on line len(PRELUDE)+1+i; with
    TAIL, the mark and then the headers of TAIL."""
    lines = list(PRELUDE) + [f'#include "{h}"' for h in headers]
    if tail:
        lines += [TAIL_MARK] + [f'#include "{h}"' for h in tail]
    return "\n".join(lines) + "\n"


def cpp_argv(cpp: str, arch: str, profile: str) -> list[str]:
    """cpp's arguments, run in the staging directory: the header root as ``public``
    (relative, so that line markers read the same whatever the directory)."""
    argv = [cpp, "-nostdinc", "-undef", "-dD", "-std=gnu11", "-x", "c",
            "-I", "public", "-I", ".", "-I", str(INCLUDE_DIR)]
    # the target compiler's predefines (``Arch.defines``), then the profile's
    for name, value in arches.get(arch).defines + PROFILE_DEFINES[profile]:
        argv.append(f"-D{name}={value}")
    return argv


def run_cpp(cpp: str, arch: str, profile: str, public: Path, headers: Sequence[str],
            tail: Sequence[str] = (), slot: str | None = None) -> CppRun:
    """Preprocess HEADERS (paths relative to PUBLIC) as one translation unit.

    TAIL: headers included after all of HEADERS, whose errors are reported but whose
    text is not in the output, which is then HEADERS' alone (cpp reads a file once,
    top to bottom: what comes after a line cannot change what came before it).
    SLOT: run in a new directory of that name beside PUBLIC, whose ``public`` is a link
    to it, so that other runs can go at the same time (each writes its own wrapper); the
    output is the same text, every name in it read through ``public``."""
    where = public.parent
    if slot is not None:
        where = public.parent / slot
        where.mkdir()
        (where / "public").symlink_to(Path("..") / public.name)
    (where / WRAPPER).write_text(wrapper_text(headers, tail), encoding="utf-8")
    result = proc.run(cpp_argv(cpp, arch, profile) + [WRAPPER], cwd=where, text=False)
    stderr = result.stderr.decode("utf-8", "replace")
    lines = [*headers, *(["", *tail] if tail else [])]  # by the wrapper's line
    errors = _attribute_errors(stderr, public, lines) if result.returncode else {}
    if result.returncode and not errors:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentFailure(f"{cpp} exited {result.returncode}: {last}")
    out = _before_tail(result.stdout) if tail else result.stdout
    if out is None:
        return CppRun("", errors, reached_tail=False)
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        return CppRun("", _not_utf8(out, e.start, public, headers))
    if f'"{WRAPPER}"' not in text:
        raise EnvironmentFailure(f"{cpp}: not a C preprocessor (no line markers in its output)")
    _check_markers(text)
    return CppRun(text, errors)


_PLAIN_WRAPPER_MARKER = re.compile(rb'^# \d+ "' + re.escape(WRAPPER.encode()) + rb'"$')


def _before_tail(out: bytes) -> bytes | None:
    """OUT up to the tail mark, as cpp writes it when the wrapper ends there: without the
    blank lines and the wrapper's line marker it puts before the next line it copies (None:
    cpp stopped before the mark)."""
    cut = out.find(b"\n" + TAIL_MARK.encode() + b"\n")
    if cut < 0:
        return None
    lines = out[:cut + 1].split(b"\n")
    lines.pop()  # the empty string after the last newline
    while lines and (not lines[-1] or _PLAIN_WRAPPER_MARKER.match(lines[-1])):
        lines.pop()
    return b"\n".join(lines) + b"\n"


def _not_utf8(out: bytes, start: int, public: Path,
              headers: Sequence[str]) -> dict[str, str]:
    """The error of the header whose text reached cpp's output at byte START and is not
    UTF-8 (a byte in a comment never gets there): header -> "file:line: not UTF-8"."""
    before = out[:start].decode("utf-8")
    markers = list(_MARKERS.finditer(before))
    # the wrapper's own marker before the byte: the line of the #include being done
    roots = [m for m in markers if m.group(2) == WRAPPER]
    index = int(roots[-1].group(1)) - len(PRELUDE) - 1 if roots else -1
    if not 0 <= index < len(headers) or not markers:
        raise InputError(f"{WRAPPER}: cpp's output is not UTF-8 (byte {start})")
    last = markers[-1]
    line = int(last.group(1)) + before[last.end():].count("\n") - 1
    where = relative_header(last.group(2), public) or last.group(2)
    return {headers[index]: f"{where}:{line}: not UTF-8 (byte {out[start]:#04x})"}


def _attribute_errors(stderr: str, public: Path, headers: Sequence[str]) -> dict[str, str]:
    """Map each cpp error to the top-level header whose #include led to it (gcc's format:
    "In file included from F:L," lines, then "F:L:C: error: message")."""
    errors: dict[str, str] = {}
    top: str | None = None
    for line in stderr.splitlines():
        inc = _INCLUDED_FROM.match(line)
        if inc:
            if inc.group(1).endswith(WRAPPER):
                top = _header_at(headers, int(inc.group(2)))
            continue
        err = _CPP_ERROR.match(line)
        if not err:
            continue
        path, lineno, col, message = err.groups()
        if path.endswith(WRAPPER):
            owner = _header_at(headers, int(lineno)) or WRAPPER
            where = owner
        else:
            owner = top or relative_header(path, public) or WRAPPER
            where = f"{relative_header(path, public) or posixpath.basename(path)}:{lineno}"
            where += f":{col}" if col else ""
        # gcc repeats "In file included from" only when the include stack changes,
        # so TOP stays until the next one.
        errors.setdefault(owner, f"{where}: {message}")
    return errors


def _header_at(headers: Sequence[str], wrapper_line: int) -> str | None:
    index = wrapper_line - len(PRELUDE) - 1
    return headers[index] if 0 <= index < len(headers) else None


@lru_cache(maxsize=4096)
def relative_header(path: str, public: Path) -> str:
    """The header path relative to public/ for a file name in cpp output, or "" when outside
    (asked for each line marker and each declaration: the same few hundred names)."""
    if path.startswith("/"):
        try:
            path = Path(path).relative_to(public).as_posix()
        except ValueError:
            return ""
        return posixpath.normpath(path)
    norm = posixpath.normpath(path)
    if norm.startswith("public/"):
        return norm[len("public/"):]
    return ""


def _check_markers(text: str) -> None:
    """Every file cpp read must be a staged header, the wrapper or one of include/."""
    for m in re.finditer(r'^# \d+ "([^"]*)"', text, re.M):
        name = m.group(1)
        if name.startswith("<") or name == WRAPPER:
            continue
        norm = posixpath.normpath(name)
        if not (norm.startswith("public/") or norm.startswith(str(INCLUDE_DIR) + "/")):
            raise InputError(f"{name}: outside the header root (a #line or #include escaped it)")


@dataclass(frozen=True)
class Split:
    """cpp -dD output split into the defines (in order) and C text for the parser."""

    defines: tuple[Define, ...]  # and macros.Undef entries, in cpp's order
    text: str  # define/undef lines blanked, line markers kept
    roots: Mapping[tuple[str, int], str]  # (header, line) of C text -> the wrapper's header
    # The C text without where it is (``reuse``): its non-blank lines, each run of them
    # from one file after that file's name, hashed; and where each of those lines is.
    shape: str = ""
    headers: tuple[str, ...] = ()  # line k of C text is in headers[k] ...
    lines: array = field(default_factory=lambda: array("l"))  # ... at lines[k]


def split_output(text: str, public: Path, headers: Sequence[str]) -> Split:
    """Take the ``#define`` lines out of cpp -dD output, with the header:line of each, and
    note which of HEADERS (the wrapper's includes) each line of C text came through, and
    the shape of the C text (``Split.shape``)."""
    defines: list = []
    roots: dict[tuple[str, int], str] = {}
    out: list[str] = []
    code: list[str] = []  # the shape's text
    at_header: list[str] = []
    at_line = array("l")
    header, line, root, file, shaped = "", 0, None, "", None
    for raw in text.split("\n"):
        if raw.startswith("#"):
            m = _MARKER.match(raw)
            if m:
                file = m.group(2)
                header = relative_header(file, public)
                line = int(m.group(1))
                if file.endswith(WRAPPER):
                    root = _header_at(headers, line)
                out.append(raw)
                continue
            d = _DEFINE.match(raw)
            if d:
                params = None
                if d.group(2) is not None:
                    params = tuple(p.strip() for p in d.group(3).split(",") if p.strip())
                body = " ".join((d.group(4) or "").split())
                defines.append(Define(d.group(1), params, body, header, line))
                raw = ""
            elif raw.startswith("#undef "):
                defines.append(Undef(raw.split()[1], header, line))
                raw = ""
        if raw.strip():
            if root is not None:
                roots[(header, line)] = root
            if file != shaped:
                code.append(f"\0{file}")
                shaped = file
            code.append(raw)
            at_header.append(header)
            at_line.append(line)
        out.append(raw)
        line += 1
    shape = hashlib.blake2b("\n".join(code).encode(), digest_size=16).hexdigest()
    return Split(tuple(defines), "\n".join(out), roots, shape, tuple(at_header), at_line)


def order_headers(files: Mapping[str, bytes], headers: Sequence[str]) -> list[str]:
    """``xen.h`` first, then headers that no other header includes (sorted), then the rest.

    Every public header assumes ``xen.h`` (``arch-x86/xen-mca.h`` uses its
    DEFINE_XEN_GUEST_HANDLE without including it), and some are only meant
    to be reached through another one (``arch-x86/hvm/save.h`` expects
    ``hvm/save.h``'s DECLARE_HVM_SAVE_TYPE), so each header is first seen
    the way its includer sees it; include guards make the later, direct
    includes no-ops."""
    included = {target for rel in headers for target in _includes(files, rel)}
    first = [h for h in headers if h == "xen.h"]
    roots = sorted(h for h in headers if h not in included and h != "xen.h")
    return first + roots + sorted(h for h in headers if h in included and h != "xen.h")


def with_includers(files: Mapping[str, bytes], roots: Collection[str]) -> set[str]:
    """ROOTS, ``xen.h`` and every header that includes one of them, directly or not (but
    not through ``xen.h``, which comes first anyway): the translation unit in which each
    of ROOTS is first seen the way its includer sees it, as in the whole tree's
    (``order_headers``), without the headers nothing of ROOTS is in."""
    includers: dict[str, set[str]] = {}
    for rel in files:
        if rel.endswith(".h"):
            for target in _includes(files, rel):
                includers.setdefault(target, set()).add(rel)
    out = {"xen.h"} if "xen.h" in files else set()
    todo = [r for r in roots if r in files]
    while todo:
        header = todo.pop()
        if header in out:
            continue
        out.add(header)
        todo.extend(includers.get(header, ()))
    return out


def _includes(files: Mapping[str, bytes], rel: str, every: bool = False) -> list[str]:
    """The headers of FILES that REL's ``#include`` lines name (relative to REL's directory
    first, then to public/, as cpp's quote search with ``-I public`` finds them; EVERY:
    both when both are there)."""
    out = []
    for name in _include_names(files[rel]):
        for base in (posixpath.dirname(rel), ""):
            target = posixpath.normpath(posixpath.join(base, name))
            if target in files and target != rel:
                out.append(target)
                if not every:
                    break
    return out


def include_candidates(files: Mapping[str, bytes], rel: str) -> list[str]:
    """Every header of FILES an ``#include`` of REL could read, next to REL or under
    public/: a superset of what cpp reads."""
    return _includes(files, rel, every=True)


_INCLUDE_NAMES: dict[bytes, tuple[str, ...]] = {}


def _include_names(data: bytes) -> tuple[str, ...]:
    """The names a header's ``#include`` lines give, quotes or brackets stripped (memoised
    by content: every arch, and every retry after a failed header, asks again)."""
    names = _INCLUDE_NAMES.get(data)
    if names is None:
        if len(_INCLUDE_NAMES) > 4096:  # a long history of trees: keep the memo small
            _INCLUDE_NAMES.clear()
        names = _INCLUDE_NAMES[data] = tuple(m.group(1).decode("latin-1")[1:-1]
                                             for m in _INCLUDE.finditer(data))
    return names
