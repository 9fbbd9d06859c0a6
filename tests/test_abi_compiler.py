"""Compiler agreement: every size, _Alignof, offset, bit-field, enumerator and integer macro of
``abi dump`` equals what gcc -m32/-m64 and clang --target (arm) compute, on the real 4.17 tree.

The probe (tests/probe.py) is compiled with -c only and the values are
read back from the ELF object; nothing built for the target runs.  The other
way round, every field the compiler's DWARF lists (tests/dwarf_fields.py),
including those inside the elements of arrays of records (``timers[].cmp``),
must be in the model at the same offset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dwarf_fields  # tests/dwarf_fields.py (pytest puts tests/ on sys.path)
import probe
import pytest

from xenpatch.abi import api, sources
from xenpatch.abi.arch import NAMES as ARCHES
from xenpatch.abi.c import preprocess as pp
from xenpatch.abi.model import ArchModel, Field, TypeInfo

pytestmark = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("clang")),
                                reason="needs gcc (with multilib) and clang")


@pytest.fixture(scope="module")
def xen_source(xen_tree: Path) -> sources.HeaderSource:
    return sources.from_tree(xen_tree)


def _agreement(src: sources.HeaderSource, profile: str, tmp_path: Path) -> None:
    model = api.dump(src, ARCHES, profile, cache_dir=tmp_path / "cache")
    report = {}
    disagreements: list[str] = []
    for arch in model.arches:
        public = pp.stage(src.files, tmp_path / arch.arch)
        order = pp.order_headers(src.files, list(arch.headers))
        p = probe.build_probe(arch, order)
        outcome = probe.run_probe(p, profile, public)
        compiled = dwarf_fields.compiler_fields(arch.arch, order, profile, public)
        missing = model_misses(arch, compiled)
        report[arch.arch] = dict(outcome.counts, checked=outcome.checked,
                                 disagreements=len(outcome.disagreements),
                                 dwarf_fields=sum(map(len, compiled.values())),
                                 dwarf_in_elements=sum("[]" in path for paths in compiled.values()
                                                       for path in paths),
                                 dwarf_missing=len(missing))
        disagreements += outcome.disagreements + missing
        # The probe really covers the headers: thousands of values per arch.
        assert outcome.counts["types"] > 400 and outcome.counts["fields"] > 2000
        assert outcome.counts["bitfields"] > 10 and outcome.counts["enumerators"] > 100
        assert outcome.counts["macros"] > 1000 and outcome.checked > 9000
    print(f"\ncompiler agreement ({src.description}, {profile}): "
          f"{json.dumps(report, sort_keys=True)}")
    assert disagreements == []


def model_misses(arch: ArchModel, compiled: dict[str, dict[str, tuple[int, int | None]]]) -> list[str]:
    """Types and field paths the compiler reports that the model lacks or places elsewhere."""
    out = []
    for name, paths in compiled.items():
        t = arch.type_map.get(name)
        if t is None:
            out.append(f"{arch.arch}: {name}: in the compiler's DWARF, not in the dump")
            continue
        fields = {path: f for path, f in t.walk_fields() if path}
        for path, (offset, bit) in paths.items():
            f = fields.get(path)
            if f is None:
                out.append(f"{arch.arch}: {name} .{path}: in the compiler's DWARF, not in the dump")
            elif f.offset != offset or (bit is not None and f.bit_offset != bit):
                out.append(f"{arch.arch}: {name} .{path}: dump {f.offset} (bit {f.bit_offset}), "
                           f"DWARF {offset} (bit {bit})")
    return out


@pytest.mark.parametrize("profile", ["tools", "guest"])
def test_dump_agrees_with_the_compilers(xen_source, profile, tmp_path):
    _agreement(xen_source, profile, tmp_path)


def test_dump_of_xen_master_agrees_with_the_compilers(xen_git, tmp_path):
    _agreement(sources.from_tree(xen_git, "master"), "tools", tmp_path)


def test_dump_of_xen_4_22_agrees_with_the_compilers(xen_git, tmp_path):
    _agreement(sources.from_tree(xen_git, "RELEASE-4.22.0"), "tools", tmp_path)


def test_dwarf_check_sees_fields_the_dump_leaves_out(xen_source, tmp_path):
    """The DWARF side can fail: a model without the fields of hvm_hw_hpet's timers[] elements
    (what the dump gave before they were modelled) is reported, path by path."""
    model = api.dump(xen_source, ("x86_64",), "tools", cache_dir=tmp_path / "cache")
    arch = model.arches[0]
    order = pp.order_headers(xen_source.files, list(arch.headers))
    compiled = dwarf_fields.compiler_fields("x86_64", order, "tools",
                                            pp.stage(xen_source.files, tmp_path / "d"))
    assert compiled["struct hvm_hw_hpet"]["timers[].cmp"] == (8, None)
    assert model_misses(arch, compiled) == []
    hpet = arch.type_map["struct hvm_hw_hpet"]
    opaque = tuple(Field(f.name, f.type, f.offset, f.size) if f.name == "timers" else f
                   for f in hpet.fields)
    cut = ArchModel(arch.arch, arch.headers, types=tuple(
        TypeInfo(t.name, t.kind, t.size, t.align, t.header, t.line, opaque) if t is hpet else t
        for t in arch.types))
    assert sorted(model_misses(cut, compiled)) == sorted(
        f"x86_64: struct hvm_hw_hpet .timers[].{leaf}: in the compiler's DWARF, not in the dump"
        for leaf in ("config", "cmp", "fsb", "res4"))


def test_probe_detects_a_wrong_layout(xen_source, tmp_path):
    """A model that is off by one somewhere is caught (the comparison can fail)."""
    model = api.dump(xen_source, ("x86_64",), "tools", cache_dir=tmp_path / "cache")
    arch = model.arches[0]
    p = probe.build_probe(arch, pp.order_headers(xen_source.files, list(arch.headers)))
    item = next(i for i in p.items if i.label == "struct start_info .nr_pages offset")
    assert item.expected == 32
    item.expected = 40
    bit = next(b for b in p.bits if b.ctype == "struct ioreq" and b.path == "dir")
    bit.bit_offset += 1
    outcome = probe.run_probe(p, "tools", pp.stage(xen_source.files, tmp_path / "p"))
    wrong = [d for d in outcome.disagreements if "start_info" in d or "struct ioreq" in d]
    assert len(wrong) == 2, outcome.disagreements


def test_read_symbols_of_32_and_64_bit_objects(tmp_path):
    src = tmp_path / "v.c"
    src.write_text("const unsigned long long xp_values[] = { 1, 0x1122334455667788ULL };\n"
                   "struct s { unsigned a:3, b:5; };\nconst struct s bits = { .b = -1 };\n")
    for arch, argv in probe.COMPILERS.items():
        obj = tmp_path / f"{arch}.o"
        assert probe.proc.run([*argv, "-c", "-o", str(obj), str(src)]).returncode == 0
        syms = probe.read_symbols(obj.read_bytes())
        assert syms["xp_values"] == (1).to_bytes(8, "little") + (0x1122334455667788).to_bytes(8, "little")
        assert probe.bit_position(syms["bits"]) == (3, 5)
