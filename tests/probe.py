"""The compiler as oracle: compile a probe of the headers and read the layout back from the object.

Used by the compiler-agreement tests and ``bench/abi_dump.py`` (which puts
``tests/`` on its path); not part of the installed package.

For one arch and profile, ``build_probe`` writes a C file that includes the
same headers ``abi dump`` parsed and initialises data with every size,
``_Alignof``, ``offsetof``, field size, enumerator and integer macro value
of the model (an array of ``unsigned long long``, plus a sign flag for
values that may be negative); bit-field positions are read from one
static object per bit-field with only that field set to all ones.  The
target compiler (gcc ``-m32``/``-m64``, clang ``--target`` for arm) only
compiles (``-c``): nothing runs.  ``read_symbols`` reads the symbols' bytes
out of the ELF relocatable with ``struct`` (ELF32/ELF64, little endian).

Macros whose dump value is None are tried separately as enumerator
values (``enum { x = (NAME) };``, an integer constant expression context):
any the compiler accepts is a disagreement too.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xenpatch import proc
from xenpatch.abi.arch import ARCHES
from xenpatch.abi.c import preprocess as pp
from xenpatch.abi.model import ArchModel, Field
from xenpatch.abi.model import array_rank as model_array_rank

# The compiler of each arch (``Arch.compiler``): gcc -m32/-m64, clang --target for arm.
COMPILERS: Mapping[str, tuple[str, ...]] = {a.name: a.compiler for a in ARCHES}
# Any diagnostic naming a probe.c line: with -w only errors and their notes
# remain, and an error inside a macro's body is reported at the header with a
# note "in expansion of macro" at the probe's line.
_LINE_ERROR = re.compile(r"^[^:]*probe\.c:(\d+):(?:\d+:)? (?:fatal error|error|note): (.*)$")
MASK64 = (1 << 64) - 1


@dataclass
class Item:
    """One value the compiler computes: its C expression and what the dump says."""

    label: str  # "x86_64 struct foo .bar offset"
    expr: str
    expected: int


@dataclass
class BitItem:
    label: str
    ctype: str
    path: str
    bit_offset: int
    bit_size: int
    size: int  # sizeof the record


@dataclass
class Probe:
    arch: str
    headers: tuple[str, ...]
    items: list[Item] = field(default_factory=list)
    bits: list[BitItem] = field(default_factory=list)
    unknown_macros: list[str] = field(default_factory=list)  # dump value None
    counts: dict[str, int] = field(default_factory=dict)


def _c_name(type_name: str) -> str | None:
    """The C spelling of a model type name; None for anonymous enums (``enum h:l``)."""
    return None if ":" in type_name else type_name


def build_probe(model: ArchModel, headers: Sequence[str]) -> Probe:
    """Everything in MODEL the compiler can be asked about.  HEADERS: in include order."""
    p = Probe(model.arch, tuple(headers))
    counts = {"types": 0, "fields": 0, "bitfields": 0, "enumerators": 0, "macros": 0}
    for t in model.types:
        name = _c_name(t.name)
        if t.kind == "enum":
            for e in t.enumerators:
                _signed(p, f"{t.name} {e.name}", e.name, e.value)
                counts["enumerators"] += 1
        if name is None:
            continue
        counts["types"] += 1
        p.items.append(Item(f"{t.name} sizeof", f"sizeof({name})", t.size))
        p.items.append(Item(f"{t.name} _Alignof", f"_Alignof({name})", t.align))
        walked = t.walk_fields()
        paths = {path: f for path, f in walked}
        for path, f in walked:
            if not f.name or not path:
                continue
            # Inside array elements (``timers[].cmp``): ask about element 0, offsets
            # relative to the element as the model keeps them.
            c_path, element = path.replace("[]", "[0]"), _element(path)
            if f.bit_size is not None:
                base = 8 * _absolute(element, paths) if element else 0
                p.bits.append(BitItem(f"{t.name} .{path} bits", name, c_path,
                                      base + (f.bit_offset or 0), f.bit_size, t.size))
                counts["bitfields"] += 1
                continue
            counts["fields"] += 1
            label = f"{t.name} .{path}"
            offset = f"__builtin_offsetof({name}, {c_path})"
            if element:
                offset += f" - __builtin_offsetof({name}, {element.replace('[]', '[0]')})"
            p.items.append(Item(f"{label} offset", offset, f.offset))
            member = f"(({name} *)0)->{c_path}"
            if f.elem_size is not None:
                rank = "[0]" * max(1, model_array_rank(f.type))
                p.items.append(Item(f"{label} elem_size", f"sizeof({member}{rank})", f.elem_size))
            if f.elem_size is None or f.size:
                p.items.append(Item(f"{label} size", f"sizeof({member})", f.size))
    for m in model.macros:
        if m.value is None:
            p.unknown_macros.append(m.name)
        else:
            _signed(p, f"macro {m.name}", m.name, m.value)
            counts["macros"] += 1
    p.counts = counts
    return p


def _element(path: str) -> str:
    """The innermost array element PATH lies in (``timers[]`` for ``timers[].cmp``), or ""."""
    cut = path.rfind("[]")
    return path[:cut + 2] if cut >= 0 else ""


def _absolute(element: str, paths: Mapping[str, Field]) -> int:
    """The offset of element 0 of the array ELEMENT (``timers[]``) from the record's start."""
    array = element.rstrip("[]")
    outer = _element(array)
    return paths[array].offset + (_absolute(outer, paths) if outer else 0)


def _signed(p: Probe, label: str, expr: str, value: int) -> None:
    p.items.append(Item(label, f"(unsigned long long)({expr})", value & MASK64))
    p.items.append(Item(f"{label} <0", f"(unsigned long long)(({expr}) < 0)", int(value < 0)))


def probe_source(p: Probe) -> str:
    lines = list(pp.PRELUDE) + [f'#include "{h}"' for h in p.headers]
    lines.append("const unsigned long long xp_values[] = {")
    lines.extend(f"  {item.expr}," for item in p.items)
    lines.append("  0 };")
    for i, b in enumerate(p.bits):
        lines.append(f"const {b.ctype} xp_bits_{i} = {{ .{b.path} = -1 }};")
    return "\n".join(lines) + "\n"


def _first_item_line(p: Probe) -> int:
    return len(pp.PRELUDE) + len(p.headers) + 2


def compile_probe(p: Probe, profile: str, public: Path, out: Path) -> tuple[bytes, str]:
    """Compile the probe for P's arch; returns the object's bytes (b"" on failure) and stderr."""
    src = public.parent / "probe.c"
    src.write_text(probe_source(p), encoding="utf-8")
    argv = [*COMPILERS[p.arch], "-std=gnu11", "-nostdinc", "-w", "-c", "-O0",
            "-I", str(public), "-I", str(public.parent), "-I", str(pp.INCLUDE_DIR)]
    argv += [f"-D{n}={v}" for n, v in pp.PROFILE_DEFINES[profile]]
    if argv[0] == "clang":
        argv.append("-ferror-limit=0")
    result = proc.run([*argv, "-o", str(out), str(src)], cwd=public.parent)
    if result.returncode != 0:
        return b"", result.stderr
    return out.read_bytes(), result.stderr


def failing_lines(stderr: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in stderr.splitlines():
        m = _LINE_ERROR.match(line)
        if m:
            out.setdefault(int(m.group(1)), m.group(2))
    return out


def read_symbols(obj: bytes) -> dict[str, bytes]:
    """The bytes of every defined data symbol of an ELF relocatable (little endian)."""
    if obj[:4] != b"\x7fELF" or obj[5] != 1:
        raise ValueError("not a little-endian ELF object")
    is64 = obj[4] == 2
    if is64:
        shoff, = struct.unpack_from("<Q", obj, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    else:
        shoff, = struct.unpack_from("<I", obj, 0x20)
        shentsize, shnum = struct.unpack_from("<HH", obj, 0x2E)
    sections = []
    for i in range(shnum):
        base = shoff + i * shentsize
        if is64:
            _, stype, _, _, off, size, link, _, _, entsize = struct.unpack_from(
                "<IIQQQQIIQQ", obj, base)
        else:
            _, stype, _, _, off, size, link, _, _, entsize = struct.unpack_from(
                "<IIIIIIIIII", obj, base)
        sections.append((stype, off, size, link, entsize))
    out: dict[str, bytes] = {}
    for stype, off, size, link, entsize in sections:
        if stype != 2:  # SHT_SYMTAB
            continue
        str_off = sections[link][1]
        for j in range(size // entsize):
            ent = off + j * entsize
            if is64:
                name, _info, _other, shndx, value, ssize = struct.unpack_from("<IBBHQQ", obj, ent)
            else:
                name, value, ssize, _info, _other, shndx = struct.unpack_from("<IIIBBH", obj, ent)
            if not name or shndx == 0 or shndx >= len(sections):
                continue
            end = obj.index(b"\0", str_off + name)
            sym = obj[str_off + name:end].decode()
            sec = sections[shndx]
            if sec[0] == 8:  # SHT_NOBITS (.bss): all zeros
                out[sym] = bytes(ssize)
            else:
                out[sym] = obj[sec[1] + value:sec[1] + value + ssize]
    return out


def bit_position(data: bytes) -> tuple[int, int] | None:
    """(first set bit, number of set bits) of a little-endian byte string."""
    value = int.from_bytes(data, "little")
    if not value:
        return None
    low = (value & -value).bit_length() - 1
    return low, bin(value).count("1")


@dataclass
class Outcome:
    arch: str
    counts: dict[str, int]
    checked: int = 0
    disagreements: list[str] = field(default_factory=list)


def compare(p: Probe, symbols: Mapping[str, bytes], rejected: Mapping[int, str]) -> Outcome:
    """The model's values against the compiler's (REJECTED: item index -> compiler error)."""
    result = Outcome(p.arch, dict(p.counts))
    values = symbols.get("xp_values", b"")
    n = len(values) // 8
    got = struct.unpack(f"<{n}Q", values[:n * 8]) if n else ()
    for i, item in enumerate(p.items):
        if i in rejected:
            result.disagreements.append(f"{p.arch}: {item.label}: compiler rejects: {rejected[i]}")
            continue
        result.checked += 1
        if i >= len(got) or got[i] != item.expected:
            have = got[i] if i < len(got) else None
            result.disagreements.append(
                f"{p.arch}: {item.label}: dump {item.expected}, compiler {have}")
    for i, b in enumerate(p.bits):
        data = symbols.get(f"xp_bits_{i}")
        pos = bit_position(data) if data is not None else None
        result.checked += 1
        if pos != (b.bit_offset, b.bit_size):
            result.disagreements.append(
                f"{p.arch}: {b.label}: dump {(b.bit_offset, b.bit_size)}, compiler {pos}")
    return result


def unknown_macro_source(p: Probe) -> str:
    lines = list(pp.PRELUDE) + [f'#include "{h}"' for h in p.headers]
    # One function each: gcc reports an undeclared identifier once per function.
    lines.extend(f"void xp_f_{i}(void) {{ enum {{ xp_m = ({name}) }}; }}"
                 for i, name in enumerate(p.unknown_macros))
    return "\n".join(lines) + "\n"


def run_probe(p: Probe, profile: str, public: Path) -> Outcome:
    """Compile P (dropping items the compiler rejects, as disagreements) and compare."""
    rejected: list[str] = []
    obj = b""
    for _ in range(4):
        obj, stderr = compile_probe(p, profile, public, public.parent / f"probe-{p.arch}.o")
        if obj:
            break
        bad = failing_lines(stderr)
        first = _first_item_line(p)
        drop_items = {ln - first for ln in bad if 0 <= ln - first < len(p.items)}
        bits_first = first + len(p.items) + 1
        drop_bits = {ln - bits_first for ln in bad if 0 <= ln - bits_first < len(p.bits)}
        if not drop_items and not drop_bits:
            last = (stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"{p.arch}: the probe does not compile: {last}")
        rejected += [f"{p.arch}: {p.items[i].label}: compiler rejects: {bad[first + i]}"
                     for i in sorted(drop_items)]
        rejected += [f"{p.arch}: {p.bits[i].label}: compiler rejects: {bad[bits_first + i]}"
                     for i in sorted(drop_bits)]
        p.items = [it for i, it in enumerate(p.items) if i not in drop_items]
        p.bits = [b for i, b in enumerate(p.bits) if i not in drop_bits]
    outcome = compare(p, read_symbols(obj), {})
    outcome.disagreements[:0] = rejected
    outcome.disagreements += unknown_macro_disagreements(p, profile, public)
    return outcome


def unknown_macro_disagreements(p: Probe, profile: str, public: Path) -> list[str]:
    """Macros the dump could not evaluate but the compiler takes as integer constants."""
    if not p.unknown_macros:
        return []
    src = public.parent / "probe.c"
    src.write_text(unknown_macro_source(p), encoding="utf-8")
    argv = [*COMPILERS[p.arch], "-std=gnu11", "-nostdinc", "-w", "-fsyntax-only",
            "-I", str(public), "-I", str(public.parent), "-I", str(pp.INCLUDE_DIR)]
    argv += [f"-D{n}={v}" for n, v in pp.PROFILE_DEFINES[profile]]
    if argv[0] == "clang":
        argv.append("-ferror-limit=0")
    else:
        argv.append("-fmax-errors=0")
    stderr = proc.run([*argv, str(src)], cwd=public.parent).stderr
    bad = failing_lines(stderr)
    first = len(pp.PRELUDE) + len(p.headers) + 1
    return [f"{p.arch}: macro {name}: dump None, compiler accepts it as an integer constant"
            for i, name in enumerate(p.unknown_macros) if first + i not in bad]
