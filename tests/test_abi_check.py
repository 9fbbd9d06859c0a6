"""abi check on real Xen: clean trees give no error; each rule fires on an injected mistake."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

from xenpatch.abi.check import Finding, check_model, findings_json, findings_text
from xenpatch.abi.model import AbiModel, ArchModel, Family, Macro, Source
from xenpatch.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = Path("xen/include/public")


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("abi", "check", *args)


def errors_of(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "xenpatch-check/1"
    return [f for f in doc["findings"] if f["severity"] == "error"]


# -- clean real trees: exit 0, no error-level finding

def test_real_tree_417_all_arches_clean(xen_tree: Path) -> None:
    proc = run_check("--tree", str(xen_tree), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert errors_of(proc) == []
    doc = json.loads(proc.stdout)
    arches = {a for f in doc["findings"] for a in f["arch"]}
    assert arches == {"x86_32", "x86_64", "arm32", "arm64"}  # every arch was checked


@pytest.mark.parametrize("profile", ["guest", "guest-latest"])
def test_real_tree_417_other_profiles_clean(xen_tree: Path, profile: str) -> None:
    proc = run_check("--tree", str(xen_tree), "--profile", profile, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert errors_of(proc) == []


def test_installed_headers_clean(headers_417: Path, headers_420: Path) -> None:
    for headers in (headers_417, headers_420):
        proc = run_check("--headers", str(headers), "--format", "json")
        assert proc.returncode == 0, f"{headers}: {proc.stderr}"
        assert errors_of(proc) == []


@pytest.mark.parametrize("rev", ["RELEASE-4.18.0", "RELEASE-4.19.0", "RELEASE-4.20.0", "master"])
def test_xen_git_releases_clean(xen_git: Path, rev: str) -> None:
    proc = run_check("--tree", str(xen_git), "--rev", rev, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert errors_of(proc) == []


# -- injected mistakes in a copy of the real tree

def insert_after(path: Path, anchor: str, text: str) -> None:
    """Insert TEXT on a new line after the line starting with ANCHOR."""
    lines = path.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(anchor))
    lines.insert(index + 1, text + "\n")
    path.write_text("".join(lines))


def line_of(path: Path, start: str) -> int:
    return next(i + 1 for i, line in enumerate(path.read_text().splitlines()) if line.startswith(start))


@pytest.fixture(scope="module")
def injected(xen_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """One clone of 4.17.5 with one mistake per rule; the CLI's JSON and the expected lines."""
    dest = tmp_path_factory.mktemp("inject") / "xen"
    subprocess.run(["git", "clone", "-q", "--shared", str(xen_tree), str(dest)], check=True)
    xen_h = dest / PUBLIC / "xen.h"
    domctl = dest / PUBLIC / "domctl.h"
    # Two flags into the SIF_ block: one on a used bit, one inside SIF_PM_MASK (bits 8-15).
    insert_after(xen_h, "#define SIF_VIRT_P2M_4TOOLS", "#define SIF_XP_DUP (1<<2)")
    insert_after(xen_h, "#define SIF_PM_MASK", "#define SIF_FOO (1<<8)")
    # A hypercall number already taken (__HYPERVISOR_dm_op is 41).
    insert_after(xen_h, "#define __HYPERVISOR_hypfs_op", "#define __HYPERVISOR_xp_op 41")
    # A redefinition with another value (cpp: "MAX_GUEST_CMDLINE" redefined).
    insert_after(xen_h, "#define MAX_GUEST_CMDLINE", "#define MAX_GUEST_CMDLINE 2048")
    # A new CDF flag above XEN_DOMCTL_CDF_MAX without moving the marker.
    insert_after(domctl, "#define XEN_DOMCTL_CDF_vpmu", "#define XEN_DOMCTL_CDF_xp (1U << 8)")
    lines = {"SIF_XP_DUP": line_of(xen_h, "#define SIF_XP_DUP"),
             "SIF_FOO": line_of(xen_h, "#define SIF_FOO"),
             "__HYPERVISOR_xp_op": line_of(xen_h, "#define __HYPERVISOR_xp_op"),
             "MAX_GUEST_CMDLINE": line_of(xen_h, "#define MAX_GUEST_CMDLINE 2048"),
             "XEN_DOMCTL_CDF_MAX": line_of(domctl, "#define XEN_DOMCTL_CDF_MAX")}
    proc = run_check("--tree", str(dest), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    text = run_check("--tree", str(dest))
    assert text.returncode == 1
    return json.loads(proc.stdout), {"lines": lines, "text": text.stdout}


ALL = ["x86_32", "x86_64", "arm32", "arm64"]


@pytest.mark.parametrize("name,rule,header,arches", [
    ("SIF_XP_DUP", "abi-bit-collision", "xen.h", ALL),
    ("SIF_FOO", "abi-reserved-bits", "xen.h", ALL),
    ("__HYPERVISOR_xp_op", "abi-value-collision", "xen.h", ALL),
    # MAX_GUEST_CMDLINE is under xen.h "#ifdef XEN_HAVE_PV_GUEST_ENTRY", which only x86 defines
    ("MAX_GUEST_CMDLINE", "abi-redefinition", "xen.h", ["x86_32", "x86_64"]),
    ("XEN_DOMCTL_CDF_MAX", "abi-max-marker", "domctl.h", ALL),
])
def test_injected_finding_reported(injected: tuple[dict, dict], name: str, rule: str,
                                   header: str, arches: list[str]) -> None:
    doc, expected = injected
    hits = [f for f in doc["findings"] if f["name"] == name and f["severity"] == "error"]
    assert [(f["rule"], f["header"], f["line"]) for f in hits] == \
        [(rule, header, expected["lines"][name])]
    assert hits[0]["arch"] == arches


def test_injected_only_those_errors(injected: tuple[dict, dict]) -> None:
    doc, _ = injected
    assert sorted(f["name"] for f in doc["findings"] if f["severity"] == "error") == sorted(
        ["SIF_XP_DUP", "SIF_FOO", "__HYPERVISOR_xp_op", "MAX_GUEST_CMDLINE", "XEN_DOMCTL_CDF_MAX"])


def test_injected_messages(injected: tuple[dict, dict]) -> None:
    doc, expected = injected
    by_name = {f["name"]: f["message"] for f in doc["findings"] if f["severity"] == "error"}
    # DESIGN.md's example message, word for word.
    assert by_name["SIF_FOO"] == "SIF_FOO (1<<8) lies in SIF_PM_MASK (bits 8-15)"
    assert "SIF_MULTIBOOT_MOD" in by_name["SIF_XP_DUP"]
    assert "__HYPERVISOR_dm_op" in by_name["__HYPERVISOR_xp_op"]
    assert "XEN_DOMCTL_CDF_xp (256)" in by_name["XEN_DOMCTL_CDF_MAX"]
    assert "2048" in by_name["MAX_GUEST_CMDLINE"] and "1024" in by_name["MAX_GUEST_CMDLINE"]
    line = expected["lines"]["SIF_FOO"]
    assert (f"xen.h:{line}: error: abi-reserved-bits: SIF_FOO (1<<8) lies in SIF_PM_MASK "
            f"(bits 8-15) [x86_32,x86_64,arm32,arm64]") in expected["text"].splitlines()


# -- pure parts: merging, suppression, output

def _arch(arch: str, extra: tuple[Macro, ...] = ()) -> ArchModel:
    macros = (Macro("F_A", 1, "(1<<0)", "x.h", 1), Macro("F_B", 2, "(1<<1)", "x.h", 2),
              Macro("F_C", 8, "(1<<3)", "x.h", 3), Macro("F_D", 2, "(1<<1)", "x.h", 4), *extra)
    family = Family("F_", "bits", ("F_A", "F_B", "F_C", "F_D"), used_mask=11, reserved_mask=0)
    return ArchModel(arch, ("x.h",), macros=macros, families=(family,))


def test_findings_merged_across_arches_and_sorted() -> None:
    model = AbiModel(Source(), (_arch("x86_64"), _arch("arm64")))
    found = check_model(model)
    assert found == (Finding("abi-bit-collision", "error", ("x86_64", "arm64"), "x.h", 4, "F_D",
                             "F_D (1<<1) shares bits 0x2 with F_B (1<<1) at x.h:2"),)


def test_suppression_by_rule_name_and_arch() -> None:
    model = AbiModel(Source(), (_arch("x86_64"), _arch("arm64")))
    assert check_model(model, [{"rule": "abi-bit-collision", "name": "F_*", "reason": "r"}]) == ()
    left = check_model(model, [{"rule": "abi-bit-collision", "name": "F_D", "reason": "r",
                                "arch": "arm64"}])
    assert [f.arches for f in left] == [("x86_64",)]
    assert len(check_model(model, [{"rule": "abi-value-collision", "name": "F_D",
                                    "reason": "r"}])) == 1


def test_findings_json_and_text() -> None:
    f = Finding("abi-reserved-bits", "error", ("x86_64", "arm64"), "xen.h", 901, "SIF_FOO",
                "SIF_FOO (1<<8) lies in SIF_PM_MASK (bits 8-15)")
    assert findings_json([f]) == {"schema": "xenpatch-check/1", "findings": [
        {"rule": "abi-reserved-bits", "severity": "error", "arch": ["x86_64", "arm64"],
         "header": "xen.h", "line": 901, "name": "SIF_FOO",
         "message": "SIF_FOO (1<<8) lies in SIF_PM_MASK (bits 8-15)"}]}
    assert findings_text([f]) == ("xen.h:901: error: abi-reserved-bits: SIF_FOO (1<<8) lies in "
                                  "SIF_PM_MASK (bits 8-15) [x86_64,arm64]\n"
                                  "1 error, 0 warnings, 0 infos\n")


def test_shipped_suppressions_have_reasons() -> None:
    config = load_config(str(ROOT / "config.toml"))
    assert 0 < len(config.suppress) <= 6
    assert all(len(e["reason"]) > 20 for e in config.suppress)
