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


# --- acceptance 2: two series on a real inbox claim the same SIF_ bit -------------------------

import json  # noqa: E402

import pinbox  # noqa: E402
import pytest  # noqa: E402
from watchkit import bare_tree, commit_edit, config_file, flag_series, git, series_mails  # noqa: E402

from xenpatch.cli import main  # noqa: E402

BOB = ("Bob Other", "bob@example.org")


def _reviews(out: Path) -> dict[tuple[str, int], dict]:  # type: ignore[type-arg]
    docs = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    return {(d["series"]["subject"], d["series"]["version"]): d for d in docs}


@pytest.mark.skipif(not pinbox.available(), reason="Debian's public-inbox is needed")
def test_same_bit_claimed_then_merged(xen_tree: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    tree = bare_tree(xen_tree, tmp_path / "tree.git")
    base = git(tree, "rev-parse", "HEAD").strip()
    config = config_file(tmp_path, tree, tmp_path / "abicache")
    inbox = pinbox.PublicInbox(tmp_path / "pi")
    first_tip = flag_series(tree, base, "SIF_HVM_GHCB", 5, 1, docs=False)
    first = series_mails(tree, base, first_tip)
    second = series_mails(tree, base, flag_series(tree, base, "SIF_FOO", 5, 1, author=BOB,
                                                  docs=False), author=BOB)
    for m in first + second:
        inbox.add(m)
    out, state = tmp_path / "out", tmp_path / "state.sqlite"
    watch = ["--config", str(config), "watch", "--once", "--source", str(inbox.inbox_dir),
             "--out", str(out), "--state", str(state)]
    assert main(watch) == 0, capsys.readouterr().err
    got = _reviews(out)
    a = got["xen/public: introduce SIF_HVM_GHCB", 1]
    b = got["xen/public: introduce SIF_FOO", 1]
    assert not [f for f in a["findings"] if f["severity"] == "error" or f["rule"] == "cross-series-claim"]
    claim = [f for f in b["findings"] if f["rule"] == "cross-series-claim"]
    assert len(claim) == 1 and claim[0]["severity"] == "warning"
    assert claim[0]["file"] == "xen/include/public/xen.h" and claim[0]["patch"] == 1
    assert claim[0]["line"] == 876
    assert ('"xen/public: introduce SIF_HVM_GHCB" (v1, <' + a["series"]["message_id"] + ">)"
            in claim[0]["message"]) and "bit 5 of SIF_" in claim[0]["message"]
    reply = (out / b["replies"][0]["file"]).read_text()
    assert "cross-series-claim" in reply and a["series"]["message_id"] in reply
    assert "cross-series-claim" not in json.dumps(a)
    capsys.readouterr()
    assert main(["--config", str(config), "claims", "--state", str(state), "--format",
                 "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["claims"]
    assert {(c["kind"], c["key"], c["series"]["subject"]) for c in listed} == {
        ("name", "SIF_HVM_GHCB", "xen/public: introduce SIF_HVM_GHCB"),
        ("bit", "5", "xen/public: introduce SIF_HVM_GHCB"),
        ("name", "SIF_FOO", "xen/public: introduce SIF_FOO"),
        ("bit", "5", "xen/public: introduce SIF_FOO")}

    # The first series is merged: its commit lands on the tree's branch.
    git(tree, "update-ref", "HEAD", first_tip)
    v2_tip = commit_edit(tree, first_tip, {"xen/include/public/xen.h": (
        "#define SIF_PM_MASK", "#define SIF_FOO           (1<<5)  /* SIF_FOO */\n#define SIF_PM_MASK")},
        "xen/public: introduce SIF_FOO\n\nA start-info flag.\n\n"
        "Signed-off-by: Bob Other <bob@example.org>", BOB)
    for m in series_mails(tree, first_tip, v2_tip, version=2, author=BOB):
        inbox.add(m)
    assert main(watch) == 1  # an error-level finding in this pass
    err = capsys.readouterr().err
    v2 = _reviews(out)["xen/public: introduce SIF_FOO", 2]
    assert v2["series"]["base"] == first_tip
    rules = {f["rule"]: f for f in v2["findings"]}
    assert "cross-series-claim" not in rules, err
    assert rules["abi-bit-collision"]["severity"] == "error"
    assert "SIF_HVM_GHCB" in rules["abi-bit-collision"]["message"]
    capsys.readouterr()
    assert main(["--config", str(config), "claims", "--state", str(state)]) == 0
    text = capsys.readouterr().out
    # The merged series' claims ended; v1 of the second was superseded by its v2.
    assert "SIF_HVM_GHCB" not in text and "SIF_FOO" in text
    assert "(v2, <" in text and "(v1, <" not in text
