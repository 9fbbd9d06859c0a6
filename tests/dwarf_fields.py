"""The compiler's own list of every record field: DWARF from ``cc -g`` read with ``readelf``.

The probe (xenpatch/abi/probe.py) asks the compiler about what the model
has; this asks it what there *is*, so that a field the model leaves out
(the fields inside ``struct hvm_hw_hpet``'s ``timers[]``) shows up as missing.
Paths follow the model's rules (DESIGN.md): records written in place
without a tag are expanded (``console.domU.mfn``), the elements of an array
of such records too, with offsets relative to the element (``timers[].cmp``).
A member whose type is a typedef or a tagged record is not expanded: that
type is compared under its own name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import probe  # tests/probe.py

from xenpatch import proc
from xenpatch.abi.c import preprocess as pp

_DIE = re.compile(r"^\s*<(\d+)><([0-9a-f]+)>: Abbrev Number: \d+(?: \((DW_TAG_\w+)\))?")
_ATTR = re.compile(r"^\s*<[0-9a-f]+>\s+(DW_AT_\w+)\s*:\s?(.*)$")
_FORM = re.compile(r"^\((?:\w+)\)\s*")  # readelf --wide: "(data1) 8", "(ref4) <0x31>, int"
_REF = re.compile(r"<0x([0-9a-f]+)>")
_RECORDS = ("DW_TAG_structure_type", "DW_TAG_union_type")
_CV = ("DW_TAG_const_type", "DW_TAG_volatile_type")


@dataclass
class Die:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Die] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        value = self.attrs.get("DW_AT_name")
        if value is None:
            return None
        return value.rsplit("): ", 1)[-1] if value.startswith("(") else value

    def int(self, attr: str) -> int | None:
        value = self.attrs.get(attr)
        return None if value is None else int(value.split()[0], 0)

    def ref(self) -> int | None:
        found = _REF.search(self.attrs.get("DW_AT_type", ""))
        return None if found is None else int(found.group(1), 16)


def parse_dies(text: str) -> tuple[list[Die], dict[int, Die]]:
    """The top-level DIEs of every unit and an offset -> DIE map."""
    top: list[Die] = []
    by_offset: dict[int, Die] = {}
    stack: list[Die] = []
    current: Die | None = None
    for line in text.splitlines():
        m = _DIE.match(line)
        if m:
            depth, offset, tag = int(m.group(1)), int(m.group(2), 16), m.group(3)
            del stack[depth:]
            if tag is None:  # a null entry closes a sibling list
                current = None
                continue
            current = Die(tag)
            by_offset[offset] = current
            if depth == 1:
                top.append(current)
            elif depth > 1 and len(stack) == depth:
                stack[depth - 1].children.append(current)
            if len(stack) == depth:  # stack[d]: the DIE open at depth d
                stack.append(current)
            continue
        a = _ATTR.match(line)
        if a and current is not None:
            current.attrs[a.group(1)] = _FORM.sub("", a.group(2).strip())
    return top, by_offset


def _strip(die: Die | None, dies: dict[int, Die]) -> Die | None:
    while die is not None and die.tag in _CV:
        ref = die.ref()
        die = dies.get(ref) if ref is not None else None
    return die


def _walk(record: Die, prefix: str, base: int, dies: dict[int, Die],
          out: dict[str, tuple[int, int | None]]) -> None:
    for m in record.children:
        if m.tag != "DW_TAG_member":
            continue
        name = m.name
        path = f"{prefix}.{name}" if prefix and name else (name or prefix)
        bit = m.int("DW_AT_data_bit_offset")
        if bit is None and m.int("DW_AT_bit_offset") is not None:
            # DWARF 2 (clang for arm32): bits from the most significant end of the
            # DW_AT_byte_size unit at DW_AT_data_member_location; little endian here.
            unit = 8 * (m.int("DW_AT_byte_size") or 0)
            bit = 8 * (m.int("DW_AT_data_member_location") or 0) + unit - (
                m.int("DW_AT_bit_offset") or 0) - (m.int("DW_AT_bit_size") or 0)
        if bit is not None:
            offset, bit_abs = base + bit // 8, base * 8 + bit
        else:
            offset, bit_abs = base + (m.int("DW_AT_data_member_location") or 0), None
        if name:
            out[path] = (offset, bit_abs)
        ref = m.ref()
        t = _strip(dies.get(ref) if ref is not None else None, dies)
        if t is None:
            continue
        if t.tag in _RECORDS and t.name is None:
            _walk(t, path, offset, dies, out)
        elif t.tag == "DW_TAG_array_type":
            rank = sum(1 for c in t.children if c.tag == "DW_TAG_subrange_type")
            eref = t.ref()
            elem = _strip(dies.get(eref) if eref is not None else None, dies)
            if elem is not None and elem.tag in _RECORDS and elem.name is None:
                _walk(elem, path + "[]" * rank, 0, dies, out)


def record_fields(text: str) -> dict[str, dict[str, tuple[int, int | None]]]:
    """Every complete named record (``struct foo``, or the typedef of an anonymous one):
    field path -> (offset, bit offset or None), as the model's ``walk_fields`` spells them."""
    top, dies = parse_dies(text)
    out: dict[str, dict[str, tuple[int, int | None]]] = {}

    def every(items: list[Die]) -> None:
        for d in items:
            if d.tag in _RECORDS and d.name and "DW_AT_declaration" not in d.attrs:
                kind = "struct" if d.tag == _RECORDS[0] else "union"
                _walk(d, "", 0, dies, out.setdefault(f"{kind} {d.name}", {}))
            elif d.tag == "DW_TAG_typedef":
                ref = d.ref()
                t = dies.get(ref) if ref is not None else None
                if t is not None and t.tag in _RECORDS and t.name is None and d.name:
                    _walk(t, "", 0, dies, out.setdefault(d.name, {}))
            every(d.children)

    every(top)
    return out


def compiler_fields(arch: str, headers: Sequence[str], profile: str,
                    public: Path) -> dict[str, dict[str, tuple[int, int | None]]]:
    """Compile HEADERS (include order) for ARCH with full debug info and read every field."""
    src = public.parent / "fields.c"
    src.write_text("\n".join([*pp.PRELUDE, *(f'#include "{h}"' for h in headers)]) + "\n",
                   encoding="utf-8")
    obj = public.parent / f"fields-{arch}.o"
    argv = [*probe.COMPILERS[arch], "-std=gnu11", "-nostdinc", "-w", "-c", "-O0", "-gdwarf-5",
            "-fno-eliminate-unused-debug-types",
            "-I", str(public), "-I", str(public.parent), "-I", str(pp.INCLUDE_DIR)]
    argv += [f"-D{n}={v}" for n, v in pp.PROFILE_DEFINES[profile]]
    result = proc.run([*argv, "-o", str(obj), str(src)], cwd=public.parent)
    if result.returncode != 0:
        raise RuntimeError(f"{arch}: the headers do not compile with -g: {result.stderr[-300:]}")
    dump = proc.run(["readelf", "--debug-dump=info", "--wide", str(obj)])
    return record_fields(dump.stdout)
