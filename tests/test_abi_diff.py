"""Unit tests of the ABI comparison (xenpatch.abi.diff) with small hand-made models."""

from __future__ import annotations

import json
from dataclasses import replace

from xenpatch.abi.diff import (
    SCHEMA,
    changes_json,
    changes_markdown,
    changes_text,
    diff_models,
    has_breaking,
)
from xenpatch.abi.model import AbiModel, ArchModel, Enumerator, Field, HeaderFailure, Macro, Source, TypeInfo

START_INFO = TypeInfo(
    name="struct start_info", kind="struct", size=16, align=8, header="xen.h", line=800,
    fields=(Field("magic", "char[4]", 0, 4), Field("flags", "uint32_t", 4, 4),
            Field("pfn", "uint64_t", 8, 8)))
UNION = TypeInfo(
    name="struct with_inline", kind="struct", size=8, align=4, header="xen.h", line=820,
    fields=(Field("u", "union {...}", 0, 8, fields=(Field("a", "uint32_t", 0, 4),
                                                    Field("b", "uint64_t", 0, 8))),))
ENUM = TypeInfo(name="enum xen.h:900", kind="enum", size=4, align=4, header="xen.h", line=900,
                enumerators=(Enumerator("XEN_A", 0), Enumerator("XEN_B", 1)))
MACROS = (Macro("SIF_PRIVILEGED", 1, "(1<<0)", "xen.h", 870),
          Macro("SIF_PM_MASK", 0xFF00, "(0xFF<<8)", "xen.h", 876),
          Macro("XEN_GUEST_HANDLE_STR", None, '"x"', "xen.h", 10))


def arch(name: str, macros=MACROS, types=(START_INFO, UNION, ENUM), failed=()) -> ArchModel:
    return ArchModel(arch=name, headers=("xen.h",), failed=failed,
                     macros=tuple(sorted(macros, key=lambda m: m.name)),
                     types=tuple(sorted(types, key=lambda t: t.name)))


def model(*arches: ArchModel) -> AbiModel:
    return AbiModel(Source("t", None), arches)


def both(**kw) -> AbiModel:
    return model(arch("x86_64", **kw), arch("x86_32", **kw))


def test_identical_models_have_no_changes():
    assert diff_models(both(), both()) == ()


def test_added_macro_is_compatible_and_merged_across_arches():
    new = both(macros=MACROS + (Macro("SIF_HVM_GHCB", 32, "(1<<5)", "xen.h", 875),))
    (ch,) = diff_models(both(), new)
    assert (ch.kind, ch.severity, ch.name, ch.new, ch.arches) == (
        "macro-added", "compatible", "SIF_HVM_GHCB", 32, ("x86_64", "x86_32"))
    assert (ch.header, ch.line) == ("xen.h", 875)
    assert not has_breaking([ch])


def test_macro_removed_and_value_changed_are_breaking():
    new = both(macros=(Macro("SIF_PRIVILEGED", 2, "(1<<1)", "xen.h", 870),
                       MACROS[2]))
    kinds = {(c.kind, c.severity, c.name, c.old, c.new) for c in diff_models(both(), new)}
    assert kinds == {("macro-removed", "breaking", "SIF_PM_MASK", 0xFF00, None),
                     ("macro-value-changed", "breaking", "SIF_PRIVILEGED", 1, 2)}


def test_macro_moved_or_respelt_is_not_a_change():
    new = both(macros=(replace(MACROS[0], line=880, expr="(1 << 0)"),) + MACROS[1:])
    assert diff_models(both(), new) == ()


def test_macro_without_value_whose_text_changed_is_info():
    new = both(macros=MACROS[:2] + (replace(MACROS[2], expr='"y"'),))
    (ch,) = diff_models(both(), new)
    assert (ch.kind, ch.severity, ch.old, ch.new) == ("macro-value-changed", "info", '"x"', '"y"')


def test_field_at_end_that_grows_the_struct_is_breaking():
    grown = replace(START_INFO, size=24, fields=START_INFO.fields + (Field("extra", "uint64_t", 16, 8),))
    changes = diff_models(both(), both(types=(grown, UNION, ENUM)))
    got = {(c.kind, c.severity, c.field) for c in changes}
    assert got == {("type-size-changed", "breaking", None), ("field-added", "breaking", "extra")}
    assert has_breaking(changes)


def test_field_taken_from_padding_is_compatible():
    old_t = replace(START_INFO, fields=(Field("magic", "char[4]", 0, 4), Field("pad", "uint32_t", 4, 4),
                                        Field("pfn", "uint64_t", 8, 8)))
    changes = diff_models(both(types=(old_t, UNION, ENUM)), both())
    got = {(c.kind, c.severity, c.field) for c in changes}
    assert got == {("field-added", "compatible", "flags"), ("field-removed", "compatible", "pad")}


def test_offset_size_align_and_type_changes():
    moved = replace(START_INFO, align=4, fields=(Field("magic", "char[4]", 0, 4),
                                                 Field("flags", "uint16_t", 4, 2),
                                                 Field("pfn", "uint64_aligned_t", 6, 8)))
    changes = diff_models(both(), both(types=(moved, UNION, ENUM)))
    got = {(c.kind, c.severity, c.field, c.old, c.new) for c in changes}
    assert ("type-align-changed", "breaking", None, 8, 4) in got
    assert ("field-offset-changed", "breaking", "pfn", 8, 6) in got
    assert ("field-type-changed", "breaking", "flags", "uint32_t (4 bytes)", "uint16_t (2 bytes)") in got
    assert ("field-type-changed", "info", "pfn", "uint64_t", "uint64_aligned_t") in got


def test_nested_inline_fields_use_dotted_paths():
    changed = replace(UNION, fields=(replace(UNION.fields[0], fields=(Field("a", "uint32_t", 0, 4),
                                                                      Field("c", "uint64_t", 0, 8))),))
    changes = diff_models(both(), both(types=(START_INFO, changed, ENUM)))
    got = {(c.kind, c.field, c.severity) for c in changes}
    assert got == {("field-added", "u.c", "compatible"), ("field-removed", "u.b", "breaking")}


def test_bitfield_position_change():
    old_t = TypeInfo("struct bits", "struct", 4, 4, "xen.h", 1,
                     fields=(Field("x", "unsigned int", 0, 4, bit_offset=0, bit_size=3),))
    new_t = replace(old_t, fields=(Field("x", "unsigned int", 0, 4, bit_offset=3, bit_size=3),))
    (ch,) = diff_models(both(types=(old_t,)), both(types=(new_t,)))
    assert (ch.kind, ch.old, ch.new) == ("field-offset-changed", "0 (bit 0)", "0 (bit 3)")


def test_types_added_and_removed():
    changes = diff_models(both(types=(START_INFO, ENUM)), both(types=(UNION, ENUM)))
    got = {(c.kind, c.severity, c.name) for c in changes}
    assert got == {("type-added", "compatible", "struct with_inline"),
                   ("type-removed", "breaking", "struct start_info")}


def test_enumerators_compared_by_name_even_when_anonymous_enum_moves():
    moved = replace(ENUM, name="enum xen.h:950", line=950,
                    enumerators=(Enumerator("XEN_A", 0), Enumerator("XEN_B", 2), Enumerator("XEN_C", 3)))
    changes = diff_models(both(), both(types=(START_INFO, UNION, moved)))
    got = {(c.kind, c.severity, c.name, c.old, c.new) for c in changes}
    assert got == {("enumerator-value-changed", "breaking", "XEN_B", 1, 2),
                   ("enumerator-added", "compatible", "XEN_C", None, 3)}


def test_enumerator_removed_is_breaking():
    fewer = replace(ENUM, enumerators=(Enumerator("XEN_A", 0),))
    (ch,) = diff_models(both(), both(types=(START_INFO, UNION, fewer)))
    assert (ch.kind, ch.severity, ch.name, ch.old) == ("enumerator-removed", "breaking", "XEN_B", 1)


def test_per_arch_differences_are_not_merged():
    old = model(arch("x86_64"), arch("x86_32"))
    new = model(arch("x86_64", macros=MACROS[:1] + MACROS[2:]), arch("x86_32"))
    (ch,) = diff_models(old, new)
    assert ch.arches == ("x86_64",)


def test_failed_header_is_left_out_and_missing_arch_ignored():
    failed = (HeaderFailure("xen.h", "xen.h:1:1: boom"),)
    old = model(arch("x86_64"), arch("arm64"))
    new = model(arch("x86_64", macros=(), types=(), failed=failed))
    assert diff_models(old, new) == ()


def test_renderings():
    new = both(macros=MACROS[1:] + (Macro("SIF_HVM_GHCB", 32, "(1<<5)", "xen.h", 875),))
    changes = diff_models(both(), new)
    doc = changes_json(changes, "base", "HEAD")
    assert doc["schema"] == SCHEMA
    assert json.loads(json.dumps(doc)) == doc
    assert [c["kind"] for c in doc["changes"]] == ["macro-removed", "macro-added"]
    assert doc["changes"][0]["arch"] == ["x86_64", "x86_32"]
    assert "field" not in doc["changes"][0]
    assert doc["summary"] == {"breaking": 1, "compatible": 1, "info": 0}
    text = changes_text(changes)
    assert text.splitlines() == [
        "xen.h:870: breaking: macro-removed: SIF_PRIVILEGED: was 1 [x86_64,x86_32]",
        "xen.h:875: compatible: macro-added: SIF_HVM_GHCB: 32 [x86_64,x86_32]",
        "2 changes: 1 breaking, 1 compatible, 0 info",
    ]
    md = changes_markdown(changes)
    assert "| breaking | macro-removed | `SIF_PRIVILEGED` | 1 |  | x86_64, x86_32 | xen.h:870 |" in md
    assert changes_text(()) == "0 changes: 0 breaking, 0 compatible, 0 info\n"


def test_versions_and_max_markers_move_by_design():
    old = both(macros=MACROS + (Macro("XEN_DOMCTL_INTERFACE_VERSION", 21, "0x15", "domctl.h", 34),
                                Macro("XEN_ELFNOTE_MAX", 18, "XEN_ELFNOTE_PHYS32_ENTRY", "elfnote.h", 220)))
    new = both(macros=MACROS + (Macro("XEN_DOMCTL_INTERFACE_VERSION", 23, "0x17", "domctl.h", 34),
                                Macro("XEN_ELFNOTE_MAX", 19, "XEN_ELFNOTE_PHYS32_RELOC", "elfnote.h", 222)))
    assert {(c.name, c.severity) for c in diff_models(old, new)} == {
        ("XEN_DOMCTL_INTERFACE_VERSION", "info"), ("XEN_ELFNOTE_MAX", "info")}
