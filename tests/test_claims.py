"""Cross-series ABI claims: derivation from an ABI diff, conflicts, and their life in the state."""

from __future__ import annotations

from pathlib import Path

from xenpatch.abi.diff import diff_models
from xenpatch.abi.families import group_families
from xenpatch.abi.model import AbiModel, ArchModel, Enumerator, Macro, Source, TypeInfo
from xenpatch.review import claims as cl
from xenpatch.review.state import State

SIF = [("SIF_PRIVILEGED", 1, "(1<<0)"), ("SIF_INITDOMAIN", 2, "(1<<1)"),
       ("SIF_MULTIBOOT_MOD", 4, "(1<<2)"), ("SIF_MOD_START_PFN", 8, "(1<<3)"),
       ("SIF_VIRT_P2M_4TOOLS", 16, "(1<<4)"), ("SIF_PM_MASK", 0xFF00, "(0xFF<<8)")]
OPS = [("__HYPERVISOR_set_trap_table", 0, "0"), ("__HYPERVISOR_mmu_update", 1, "1"),
       ("__HYPERVISOR_set_gdt", 2, "2")]


def model(extra: list[tuple[str, int, str]] = (), ops: list[tuple[str, int, str]] = (),
          enum_extra: tuple[tuple[str, int], ...] = ()) -> AbiModel:  # type: ignore[assignment]
    macros = []
    for i, (name, value, expr) in enumerate(SIF + list(extra)):
        macros.append(Macro(name, value, expr, "xen.h", 900 + i))
    for i, (name, value, expr) in enumerate(OPS + list(ops)):
        macros.append(Macro(name, value, expr, "xen.h", 100 + i))
    enum = TypeInfo("enum xenmem_access", "enum", 4, 4, "memory.h", 40,
                    enumerators=tuple(Enumerator(n, v) for n, v in
                                      (("XENMEM_access_n", 0), ("XENMEM_access_r", 1))
                                      + enum_extra))
    macros.sort(key=lambda m: m.name)
    arches = tuple(ArchModel(a, ("memory.h", "xen.h"), macros=tuple(macros),
                             families=group_families(macros, [enum]), types=(enum,))
                   for a in ("x86_64", "x86_32"))
    return AbiModel(Source("t", None), arches)


def derive(new: AbiModel, base: AbiModel | None = None) -> tuple[cl.Claim, ...]:
    return cl.derive(diff_models(base or model(), new), new)


def test_a_new_flag_claims_its_name_and_bit() -> None:
    got = derive(model([("SIF_HVM_GHCB", 32, "(1<<5)")]))
    assert [(c.kind, c.family, c.key, c.name) for c in got] == [
        ("name", "", "SIF_HVM_GHCB", "SIF_HVM_GHCB"), ("bit", "SIF_", "5", "SIF_HVM_GHCB")]
    assert got[1].what == "bit 5 of SIF_" and got[1].line == 906


def test_values_and_enumerators() -> None:
    got = derive(model(ops=[("__HYPERVISOR_new_op", 3, "3")], enum_extra=(("XENMEM_access_w", 2),)))
    kinds = {(c.kind, c.family, c.key) for c in got}
    assert ("value", "__HYPERVISOR_", "3") in kinds
    assert ("enumerator", "XENMEM_access_", "2") in kinds
    assert ("name", "", "XENMEM_access_w") in kinds


def test_two_series_taking_one_bit_conflict_and_name_the_first() -> None:
    first = derive(model([("SIF_HVM_GHCB", 32, "(1<<5)")]))
    second = derive(model([("SIF_FOO", 32, "(1<<5)")]))
    third = derive(model([("SIF_BAR", 64, "(1<<6)")]))
    ref = cl.SeriesRef("xen/public: introduce SIF_HVM_GHCB", 1, "a@example.org")
    found = cl.conflicts(second, [(c, ref) for c in first])
    assert len(found) == 1
    assert found[0].message == ('SIF_FOO takes bit 5 of SIF_, which "xen/public: introduce '
                                'SIF_HVM_GHCB" (v1, <a@example.org>) also takes (SIF_HVM_GHCB), '
                                'not yet merged; whichever is merged second collides')
    assert cl.conflicts(third, [(c, ref) for c in first]) == ()
    same_name = cl.conflicts(derive(model([("SIF_HVM_GHCB", 64, "(1<<6)")])),
                             [(c, ref) for c in first])
    assert [c.claim.kind for c in same_name] == ["name"]


def test_state_keeps_claims_until_merged_or_superseded(tmp_path: Path) -> None:
    state = State(tmp_path / "s.sqlite")
    with state.transaction() as db:
        for key, version in (("a", 1), ("b", 1), ("b", 2)):
            state.add_pending(db, key=key, version=version, message_id=f"{key}{version}@x",
                              subject=key, author="A <a@x>", source="s", root=f"{key}@x",
                              total=1)
    rows = {(r.key, r.version): r.id for r in state.all_series()}
    first = derive(model([("SIF_HVM_GHCB", 32, "(1<<5)")]))
    second = derive(model([("SIF_FOO", 32, "(1<<5)")]))
    state.record_review(rows["a", 1], "d1", {"exit": 0}, first, [])
    state.record_review(rows["b", 1], "d2", {"exit": 0}, second, [("<r@x>", "r.eml")])
    state.record_review(rows["b", 1], "d2", {"exit": 0}, second, [])  # recorded once only
    assert len(state.open_claims()) == 4 and len(state.replies()) == 1
    state.record_review(rows["b", 2], "d3", {"exit": 0}, second, [])
    holders = {(o.holder.subject, o.holder.version) for o in state.open_claims()}
    assert holders == {("a", 1), ("b", 2)}  # b v1 superseded by b v2
    assert state.end_merged(frozenset({"SIF_HVM_GHCB"}), "0123456789abcdef") == 2
    assert {o.holder.subject for o in state.open_claims()} == {"b"}
    state.close()
