"""abi dump on real Xen: every header parses on every arch it belongs to; only dom0_ops.h fails.

Also: the not-applicable rule, --headers directories, --rev of a commit,
a golden JSON for one real header, and the model's JSON round trip.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from xenpatch.abi import api, sources
from xenpatch.abi.model import AbiModel, ArchModel

GOLDEN = Path(__file__).parent / "golden" / "abi"
X86_ONLY = {"arch-x86/xen.h", "arch-x86/hvm/start_info.h", "arch-x86/cpuid.h"}
ARM_ONLY = {"arch-arm.h", "arch-arm/hvm/save.h"}


def _expect_only_dom0_ops(model: AbiModel, profile: str = "tools") -> None:
    for arch in model.arches:
        failed = [f.header for f in arch.failed]
        assert failed == (["dom0_ops.h"] if profile != "guest" else []), (arch.arch, arch.failed)
        assert len(arch.headers) > 55 and len(arch.types) > 400 and len(arch.macros) > 1000
        applicable = set(arch.headers)
        if arch.arch.startswith("x86"):
            assert X86_ONLY <= applicable and not ARM_ONLY & applicable
            assert ARM_ONLY <= set(arch.not_applicable)
        else:
            assert ARM_ONLY <= applicable and not X86_ONLY & applicable
            assert X86_ONLY <= set(arch.not_applicable)
        other = "arch-x86/xen-x86_64.h" if arch.arch == "x86_32" else "arch-x86/xen-x86_32.h"
        if arch.arch.startswith("x86"):
            assert other in arch.not_applicable
        assert "xen.h" in applicable and "io/ring.h" in applicable


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("abi-cache")


@pytest.mark.parametrize("profile", ["tools", "guest", "guest-latest"])
def test_real_tree_all_arches(xen_tree, profile, cache):
    model = api.dump(sources.from_tree(xen_tree), profile=profile, cache_dir=cache)
    assert [a.arch for a in model.arches] == ["x86_32", "x86_64", "arm32", "arm64"]
    _expect_only_dom0_ops(model, profile)
    if profile == "guest":  # tools-only headers #error without __XEN_TOOLS__: not applicable
        for arch in model.arches:
            assert {"domctl.h", "sysctl.h"} <= set(arch.not_applicable)


def test_known_layouts_of_the_real_tree(xen_tree, cache):
    model = api.dump(sources.from_tree(xen_tree), cache_dir=cache)
    x64, x32, arm32 = (model.arch_map[a] for a in ("x86_64", "x86_32", "arm32"))
    si = x64.type_map["struct start_info"]
    assert (si.size, si.align, si.header) == (1168, 8, "xen.h")
    assert si.fields[0].to_json() == {"name": "magic", "type": "char[32]", "offset": 0, "size": 32}
    assert x64.macro_map["SIF_PM_MASK"].value == 0xFF00
    # x86_32: uint64_t is 4-aligned, uint64_aligned_t (tools) keeps 8 (xen-x86_32.h)
    assert x32.type_map["struct vcpu_time_info"].align == 4
    domctl = x32.type_map["struct xen_domctl"]
    assert domctl.align == 8
    # arm: XEN_GUEST_HANDLE (__guest_handle_64_*) is an 8-byte union even on arm32,
    # the hypercall-parameter one 4 bytes (arch-arm.h)
    handle = arm32.type_map["__guest_handle_64_char"]
    assert (handle.kind, handle.size, handle.align) == ("union", 8, 8)
    assert arm32.type_map["__guest_handle_char"].size == 4
    # bit-fields (hvm/ioreq.h): dir follows 30 bytes, state:4 and data_is_ptr:1
    ioreq = {f.name: f for f in x64.type_map["struct ioreq"].fields}
    assert (ioreq["dir"].bit_offset, ioreq["dir"].bit_size) == (8 * 30 + 5, 1)


@pytest.mark.parametrize("fixture", ["headers_417", "headers_420"])
def test_installed_headers(fixture, request, cache):
    path = request.getfixturevalue(fixture)
    src = sources.from_headers_dir(path)
    assert not any(h.startswith(("foreign/", "sys/")) for h in src.files)
    model = api.dump(src, cache_dir=cache)
    _expect_only_dom0_ops(model)
    if fixture == "headers_420":  # 4.20 ships arch-ppc.h / arch-riscv.h: no arch of ours
        for arch in model.arches:
            assert {"arch-ppc.h", "arch-riscv.h"} <= set(arch.not_applicable)


def test_rev_reads_the_commit_not_the_work_tree(xen_clone, cache):
    xen_h = xen_clone / "xen/include/public/xen.h"
    xen_h.write_text(xen_h.read_text() + "\n#define XENPATCH_WORKTREE_ONLY 1\n")
    work = api.dump(sources.from_tree(xen_clone), ("x86_64",), cache_dir=cache)
    committed = api.dump(sources.from_tree(xen_clone, "HEAD"), ("x86_64",), cache_dir=cache)
    assert "XENPATCH_WORKTREE_ONLY" in work.arches[0].macro_map
    assert "XENPATCH_WORKTREE_ONLY" not in committed.arches[0].macro_map
    assert committed.source.rev and len(committed.source.rev) == 40


def test_the_next_revision_reads_only_the_blobs_that_changed(xen_clone, monkeypatch):
    """Two revisions of public/ (the sides of a diff, two commits of a history) share most
    of their headers: the second read asks git only for the blobs the first did not get
    (by object id), and gives what a fresh read gives."""
    import git

    from xenpatch import gitrepo

    xen_h = xen_clone / "xen/include/public/xen.h"
    xen_h.write_text(xen_h.read_text() + "\n#define XENPATCH_NEXT 1\n")
    subprocess.run(["git", "-C", str(xen_clone), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qam", "next"], check=True)
    monkeypatch.setattr(gitrepo, "_BLOBS", {})
    monkeypatch.setattr(gitrepo, "_BLOBS_SIZE", [0])
    read: list[str] = []
    real = git.Blob.data_stream
    monkeypatch.setattr(git.Blob, "data_stream",
                        property(lambda self: read.append(self.path) or real.fget(self)))
    first = sources.from_tree(xen_clone, "HEAD~1")
    assert len(read) == len(first.files) > 50
    read.clear()
    second = sources.from_tree(xen_clone, "HEAD")
    assert read == ["xen/include/public/xen.h"]
    assert b"XENPATCH_NEXT" in second.files["xen.h"]
    monkeypatch.setattr(gitrepo, "_BLOBS", {})
    monkeypatch.setattr(gitrepo, "_BLOBS_SIZE", [0])
    assert sources.from_tree(xen_clone, "HEAD").files == second.files
    assert sources.from_tree(xen_clone, "HEAD~1").files == first.files
    # past MAX_BLOB_BYTES the oldest go
    monkeypatch.setattr(gitrepo, "MAX_BLOB_BYTES", 100_000)
    sources.from_tree(xen_clone, "HEAD")
    assert 0 < gitrepo._BLOBS_SIZE[0] <= 100_000
    assert gitrepo._BLOBS_SIZE[0] == sum(map(len, gitrepo._BLOBS.values()))

def test_a_snapshot_is_hashed_once_and_its_key_follows_its_content(xen_tree):
    """A HeaderSource's files (a read-only view) are hashed once for every key and staged
    copy of the command; a mapping that can change is hashed again each time.  The model
    cache's key is that digest's: the same headers give the same key, a changed byte or a
    moved file another."""
    from types import MappingProxyType

    from xenpatch.abi.modelcache import Key

    src = sources.from_tree(xen_tree)
    value = sources.digest(src.files)
    assert sources._DIGESTS[id(src.files)] == (src.files, value)
    assert sources.digest(src.files) == value
    plain = dict(src.files)
    assert sources.digest(plain) == value and id(plain) not in sources._DIGESTS
    plain["xen.h"] += b"\n"
    assert sources.digest(plain) != value
    same = sources.HeaderSource("copy", None, MappingProxyType(dict(src.files)))
    assert Key.of(same, "tools", "cpp") == Key.of(src, "tools", "cpp")
    changed = sources.HeaderSource("x", None, MappingProxyType(plain))
    moved = dict(src.files)
    moved["xen2.h"] = moved.pop("xen.h")
    for other in (changed, sources.HeaderSource("y", None, MappingProxyType(moved))):
        assert Key.of(other, "tools", "cpp") != Key.of(src, "tools", "cpp")
    assert Key.of(src, "guest", "cpp") != Key.of(src, "tools", "cpp")
    assert Key.of(src, "tools", "cpp", ("xen.h",)) != Key.of(src, "tools", "cpp")



@pytest.mark.parametrize("rev", ["RELEASE-4.18.0", "RELEASE-4.19.0", "RELEASE-4.20.0", "master"])
def test_xen_git_releases(xen_git, rev, cache):
    model = api.dump(sources.from_tree(xen_git, rev), cache_dir=cache)
    _expect_only_dom0_ops(model)


def test_cache_gives_the_same_model(xen_tree, tmp_path):
    src = sources.from_tree(xen_tree)
    cold = api.dump(src, ("x86_32", "arm64"), cache_dir=tmp_path)
    assert len(list(tmp_path.rglob("*.json"))) == 2
    warm = api.dump(src, ("x86_32", "arm64"), cache_dir=tmp_path)
    assert warm == cold
    # the warm `abi dump` splices the cached text: the same document as the model's
    spliced = api.dump_json(src, ("x86_32", "arm64"), cache_dir=tmp_path)
    assert json.loads(spliced) == json.loads(cold.dumps())
    assert AbiModel.from_json(json.loads(spliced)) == cold
    changed = dict(src.files)
    changed["xen.h"] = changed["xen.h"] + b"\n#define XENPATCH_NEW 7\n"
    other = api.dump(sources.HeaderSource("x", None, changed), ("x86_32",), cache_dir=tmp_path)
    assert other.arches[0].macro_map["XENPATCH_NEW"].value == 7


def _one_header(arch: ArchModel, header: str) -> dict:
    return {
        "types": {t.name: t.to_json() for t in arch.types if t.header == header},
        "macros": {m.name: {"value": m.value, "expr": m.expr, "line": m.line}
                   for m in arch.macros if m.header == header},
    }


def test_golden_start_info_x86_64(xen_tree, cache, regen_golden):
    model = api.dump(sources.from_tree(xen_tree), ("x86_64",), cache_dir=cache)
    got = _one_header(model.arches[0], "arch-x86/hvm/start_info.h")
    golden = GOLDEN / "start_info-x86_64.json"
    if regen_golden:
        golden.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(golden.read_text())
    assert got["types"]["struct hvm_start_info"]["size"] == 56


def test_json_round_trip(xen_tree, cache):
    model = api.dump(sources.from_tree(xen_tree), cache_dir=cache)
    text = model.dumps()
    again = AbiModel.from_json(json.loads(text))
    assert again == model
    assert again.dumps() == text
    assert json.loads(text)["schema"] == "xenpatch-abi/1"
