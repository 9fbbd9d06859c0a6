"""The interface rules' partial guest views, and the macro memo: exact, on real headers.

``interfaces.judge`` reads the guest views of only the headers the changes are
in (``api.dump``'s ROOTS, ``preprocess.with_includers``); ``macros.Memo``
reuses an expansion or a value when what it depended on gives the same
answers.  Both are speed-ups that must not change a result: each test here
compares them with the plain way on the real 4.17.5 tree (and, locally, on
every commit of two real release cycles of xen.git).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xenpatch.abi import api, sources
from xenpatch.abi.c import macros, pipeline
from xenpatch.abi.c import preprocess as pp
from xenpatch.abi.c.parse import SegmentParser
from xenpatch.abi.diff import diff_models
from xenpatch.abi.interfaces import Side, judge
from xenpatch.abi.model import ARCHES

PUBLIC = "xen/include/public"


def test_with_includers_reads_a_header_the_way_its_includer_does(xen_tree):
    files = sources.from_tree(xen_tree).files
    assert pp.with_includers(files, ["xen.h"]) == {"xen.h"}
    assert pp.with_includers(files, ["vcpu.h"]) == {"vcpu.h", "xen.h"}
    # arch-x86/hvm/save.h expects hvm/save.h's DECLARE_HVM_SAVE_TYPE: its includer
    # comes too, and what includes that (domctl.h), but not all of xen.h's includers.
    got = pp.with_includers(files, ["arch-x86/hvm/save.h"])
    assert {"arch-x86/hvm/save.h", "hvm/save.h", "domctl.h", "xen.h"} <= got
    assert len(got) < len(files) // 4
    assert pp.with_includers(files, ["no/such.h"]) == {"xen.h"}


def _edited(xen_tree: Path, tmp: Path, edits: list[tuple[str, str, str]]) -> sources.HeaderSource:
    dest = tmp / "public"
    shutil.copytree(xen_tree / PUBLIC, dest)
    for rel, old, new in edits:
        text = (dest / rel).read_text()
        assert old in text, (rel, old)
        (dest / rel).write_text(text.replace(old, new, 1))
    return sources.from_headers_dir(dest)


# One change per kind of place: a stable record (event_channel.h), a tools-only
# header (domctl.h), a tools-only block of a guest header (memory.h), a header
# only reached through another (arch-x86/hvm/save.h), xen.h itself, a guarded
# change (vcpu.h's __XEN_INTERFACE_VERSION__), a removed alias (VGCF_IN_KERNEL).
EDITS = [
    ("domctl.h", "    uint32_t ssidref;", "    uint64_t ssidref;"),
    ("memory.h", "    XENMEM_access_n2rwx,\n", "    XENMEM_access_n2rwx,\n    XENMEM_access_new,\n"),
    ("arch-x86/hvm/save.h", "        uint64_t fsb;           /* FSB route, not supported now */",
     "        uint32_t fsb;\n        uint32_t fsb_hi;"),
    ("xen.h", "#define VIRQ_XENPMU     13", "#define VIRQ_XENPMU     14"),
    ("vcpu.h", "    uint32_t offset; /* offset within page */",
     "#if __XEN_INTERFACE_VERSION__ >= 0x00040e00\n    uint16_t offset;\n    uint16_t flags;\n"
     "#else\n    uint32_t offset; /* offset within page */\n#endif"),
    ("arch-x86/xen.h", "#define VGCF_IN_KERNEL                 (1<<2)\n", ""),
    ("event_channel.h", "struct evtchn_bind_virq {\n    /* IN parameters. */\n    uint32_t virq;",
     "struct evtchn_bind_virq {\n    /* IN parameters. */\n    uint64_t virq;"),
]


def _rated_both_ways(old_src, new_src, arches, cache: Path):
    """judge's result with partial guest views and with whole ones; the (profile, roots)
    the partial pass asked for."""
    asked: list[tuple[str, frozenset[str] | None]] = []

    def side(src: sources.HeaderSource, label: str, whole: bool) -> Side:
        def load(profile: str, roots):
            if not whole:
                asked.append((profile, roots))
            return api.dump(src, arches, profile, cache_dir=cache,
                            roots=None if whole else roots)
        return Side(load, label)

    results = []
    for whole in (False, True):
        old, new = side(old_src, "old", whole), side(new_src, "new", whole)
        changes = diff_models(old.model("tools"), new.model("tools"))
        results.append(judge(changes, old, new, None))
    return results, asked


def test_partial_guest_views_rate_every_change_as_the_whole_views_do(xen_tree, tmp_path):
    old_src = sources.from_tree(xen_tree)
    new_src = _edited(xen_tree, tmp_path, EDITS)
    (partial, whole), asked = _rated_both_ways(old_src, new_src, ("x86_64", "arm64"),
                                               tmp_path / "cache")
    assert partial == whole
    # Every guest view was partial: none needed the whole tree.  The legacy one reads only
    # the headers of the changes it can rate otherwise: not domctl.h (guests cannot read
    # it), nor arch-x86/xen.h (the removed alias is compatible whatever it says).
    every = frozenset({"vcpu.h", "domctl.h", "memory.h", "arch-x86/hvm/save.h", "xen.h",
                       "arch-x86/xen.h", "event_channel.h"})
    assert {r for p, r in asked if p == "guest-latest"} == {every}
    assert {r for p, r in asked if p == "guest"} == {every - {"domctl.h", "arch-x86/xen.h"}}
    by = {(c.base_kind or c.kind, c.name, c.field): c for c in partial}
    assert by[("field-type-changed", "struct evtchn_bind_virq", "virq")].interface == "stable"
    ssidref = by[("field-type-changed", "struct xen_domctl_createdomain", "ssidref")]
    assert (ssidref.interface, ssidref.kind) == ("tools", "interface-version")
    assert by[("enumerator-value-changed", "XENMEM_access_default", None)].interface == "tools"
    assert by[("field-type-changed", "struct hvm_hw_hpet", "timers[].fsb")].interface == "stable"
    assert by[("macro-value-changed", "VIRQ_XENPMU", None)].interface == "stable"
    offset = by[("field-type-changed", "struct vcpu_register_vcpu_info", "offset")]
    assert (offset.interface, offset.severity) == ("stable", "compatible")
    assert by[("macro-alias-removed", "VGCF_IN_KERNEL", None)].severity == "compatible"


def test_a_partial_view_groups_no_families_and_keeps_what_the_rules_read(xen_tree, tmp_path):
    """The rules read a partial model's types and macros, never its families: grouping
    them is left out (``api.dump``'s ROOTS); the whole view still has them."""
    src = sources.from_tree(xen_tree)
    whole = api.dump(src, ("x86_64",), "guest-latest", cache_dir=tmp_path / "cache")
    part = api.dump(src, ("x86_64",), "guest-latest", cache_dir=tmp_path / "cache",
                    roots=["vcpu.h"])
    w, p = whole.arches[0], part.arches[0]
    assert w.families and p.families == ()
    assert {f.prefix for f in w.families} >= {"VCPUOP_"}
    mine = [m for m in w.macros if m.header == "vcpu.h"]
    assert mine and all(p.macro_map[m.name] == m for m in mine)
    assert p.type_map["struct vcpu_register_vcpu_info"] == \
        w.type_map["struct vcpu_register_vcpu_info"]


def test_a_partial_view_that_cannot_stand_alone_falls_back_to_the_whole_view(tmp_path):
    """b.h uses a typedef of a.h without including it (the whole tree reads a.h first,
    sorted): alone, b.h fails to parse, so the rules read the whole view instead."""
    def tree(width: str) -> sources.HeaderSource:
        d = tmp_path / width
        d.mkdir()
        (d / "xen.h").write_text("#ifndef X_H\n#define X_H\n#include <stdint.h>\n#endif\n")
        (d / "a.h").write_text("#ifndef A_H\n#define A_H\ntypedef uint32_t a_t;\n#endif\n")
        (d / "b.h").write_text(f"#ifndef B_H\n#define B_H\nstruct b {{ a_t x; {width} y; }};\n"
                               "#endif\n")
        return sources.from_headers_dir(d)

    (partial, whole), asked = _rated_both_ways(tree("uint32_t"), tree("uint64_t"),
                                               ("x86_64",), tmp_path / "cache")
    assert partial == whole and partial
    assert all(c.interface == "stable" for c in partial)
    # tried alone, then the whole view
    assert ("guest-latest", frozenset({"b.h"})) in asked and ("guest-latest", None) in asked


def _macro_values(src: sources.HeaderSource, arch: str, memo: macros.Memo,
                  tmp: Path) -> dict[str, int | None]:
    result = pipeline.c_pass(src.files, arch, "tools", "cpp", tmp / arch, SegmentParser())
    return {m.name: m.value for m in macros.evaluate_macros(result.split.defines, result.decls,
                                                            memo)}


def test_the_macro_memo_gives_every_value_a_fresh_evaluation_gives(xen_tree, tmp_path):
    base = sources.from_tree(xen_tree)
    # A patched tree whose changed definitions feed other macros and a sizeof.
    patched = _edited(xen_tree, tmp_path, [
        ("xen.h", "#define VIRQ_ARCH_0    16", "#define VIRQ_ARCH_0    24"),
        ("vcpu.h", "struct vcpu_register_vcpu_info {\n    uint64_t mfn;",
         "struct vcpu_register_vcpu_info {\n    uint64_t mfn;\n    uint64_t extra;"),
        ("xen.h", "#define VIRQ_TIMER      0", "#define VIRQ_TIMER      0\n"
         "#define XP_VCPU_INFO_SIZE sizeof(struct vcpu_register_vcpu_info)\n"
         "#define XP_ARCH_1 (VIRQ_ARCH_0 + 1)"),
    ])
    shared = macros.Memo()
    for i, (src, arch) in enumerate([(base, a) for a in ARCHES] + [(patched, a) for a in ARCHES]):
        remembered = _macro_values(src, arch, shared, tmp_path / f"s{i}")
        fresh = _macro_values(src, arch, macros.Memo(), tmp_path / f"f{i}")
        assert remembered == fresh, arch
        assert sum(v is not None for v in fresh.values()) > 1000
    assert fresh["XP_ARCH_1"] == 25 and fresh["VIRQ_ARCH_1"] == 17
    assert fresh["XP_VCPU_INFO_SIZE"] == 24


def test_the_macro_memo_is_not_used_when_a_definition_or_a_type_answer_differs():
    from xenpatch.abi.c.cdefs import Define, IntType

    class Env:
        def __init__(self, size: int) -> None:
            self.arch, self.size = "x86_64", size

        def int_type(self, spelling):
            return IntType(4, False) if spelling == "uint32_t" else None

        def sizeof(self, spelling):
            return self.size if spelling == "struct s" else None

        def alignof(self, spelling):
            return None

        def enumerator(self, name):
            return None

        def offsetof(self, spelling, designator):
            return None

        def sizeof_member(self, spelling, path):
            return None

    def defs(b: str) -> list[Define]:
        return [Define("A", None, "(B + S)", "t.h", 1), Define("B", None, b, "t.h", 2),
                Define("S", None, "sizeof(struct s)", "t.h", 3)]

    memo = macros.Memo()

    def values(b: str, size: int) -> dict[str, int | None]:
        return {m.name: m.value for m in macros.evaluate_macros(defs(b), Env(size), memo)}

    assert values("1", 8) == {"A": 9, "B": 1, "S": 8}
    assert values("1", 8) == {"A": 9, "B": 1, "S": 8}
    assert values("2", 8) == {"A": 10, "B": 2, "S": 8}  # B's definition changed
    assert values("2", 16) == {"A": 18, "B": 2, "S": 16}  # sizeof's answer changed
    assert values("1", 8) == {"A": 9, "B": 1, "S": 8}  # the first variants are still there


@pytest.mark.parametrize("rev_range", ["RELEASE-4.21.0..RELEASE-4.22.0",
                                       "RELEASE-4.19.0..RELEASE-4.20.0"])
def test_partial_views_rate_every_commit_of_a_release_cycle_as_whole_views(xen_git, tmp_path,
                                                                         rev_range):
    """Local (xen.git): each commit touching public/ against its parent, both ways."""
    from xenpatch import gitrepo

    repo = gitrepo.open_repo(xen_git)
    commits = gitrepo.commits_touching(repo, rev_range, PUBLIC)
    assert len(commits) > 10
    rated, whole_views = 0, []
    for sha, parent, _ in commits:
        (partial, whole), asked = _rated_both_ways(
            sources.from_tree(xen_git, parent), sources.from_tree(xen_git, sha), ARCHES,
            tmp_path / "cache")
        assert partial == whole, sha
        guest = [r for p, r in asked if p != "tools"]
        rated += bool(guest)
        if None in guest:
            whole_views.append(sha[:12])
    # Commits with changes were rated on partial views; those without need no guest view.
    assert rated >= len(commits) // 3
    assert not whole_views, whole_views  # none needed the whole tree (c0b379294217 did
    # before an includer refusing a view with #error, dom0_ops.h, was taken as a failure)


def test_a_definition_that_moves_to_another_header_is_read_on_both_sides(xen_tree, tmp_path):
    """VCPUOP_send_nmi moves from vcpu.h (included by nothing) to event_channel.h with
    another value: the change names the new header, the old side's view must read the
    old one."""
    old_src = sources.from_tree(xen_tree)
    new_src = _edited(xen_tree, tmp_path, [
        ("vcpu.h", "#define VCPUOP_send_nmi             11\n", ""),
        ("event_channel.h", "struct evtchn_bind_virq {",
         "#define VCPUOP_send_nmi             12\n\nstruct evtchn_bind_virq {"),
    ])
    (partial, whole), asked = _rated_both_ways(old_src, new_src, ("x86_64",), tmp_path / "cache")
    assert partial == whole
    (moved,) = [c for c in partial if c.name == "VCPUOP_send_nmi"]
    assert (moved.kind, moved.header, moved.interface) == \
        ("macro-value-changed", "event_channel.h", "stable")
    assert all(r is not None and {"vcpu.h", "event_channel.h"} <= r
               for p, r in asked if p != "tools")
