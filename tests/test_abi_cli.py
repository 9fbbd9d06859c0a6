"""The abi commands as a user runs them: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import one_line_error, run_cli


def run(*args: str, cache: Path, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_cli("abi", *args, cwd=cwd, env={"XENPATCH_ABI_CACHE": str(cache), **(env or {})})


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def test_dump_json_and_text(xen_tree, cache, tmp_path):
    out = tmp_path / "abi.json"
    proc = run("dump", "--tree", str(xen_tree), "--arch", "x86_64,arm32", "-o", str(out),
               cache=cache)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "xenpatch-abi/1" and sorted(doc["arches"]) == ["arm32", "x86_64"]
    assert doc["arches"]["x86_64"]["types"]["struct start_info"]["size"] == 1168
    text = run("dump", "--tree", str(xen_tree), "--arch", "x86_64", "--format", "text",
               cache=cache)
    assert text.returncode == 0
    assert "struct start_info  size 1168 align 8  [xen.h:" in text.stdout


def test_tree_without_public_headers(tmp_path, cache):
    (tmp_path / "notxen").mkdir()
    one_line_error(run("dump", "--tree", str(tmp_path / "notxen"), cache=cache), 2,
                   "notxen", "xen/include/public")


def test_tree_and_headers_together(xen_tree, headers_417, cache):
    one_line_error(run("dump", "--tree", str(xen_tree), "--headers", str(headers_417),
                       cache=cache), 2, "--headers")


def test_missing_cpp_is_an_environment_failure(xen_tree, cache):
    proc = run("dump", "--tree", str(xen_tree), "--arch", "x86_64", cache=cache,
               env={"XENPATCH_ABI_CPP": "xenpatch-no-such-cpp"})
    one_line_error(proc, 3, "xenpatch-no-such-cpp")


def test_a_cpp_that_is_not_a_preprocessor(xen_tree, cache):
    proc = run("dump", "--tree", str(xen_tree), "--arch", "x86_64", cache=cache,
               env={"XENPATCH_ABI_CPP": "true"})
    one_line_error(proc, 3, "not a C preprocessor")


def test_unknown_revision(xen_tree, cache):
    one_line_error(run("dump", "--tree", str(xen_tree), "--rev", "no-such-rev", cache=cache),
                   2, "no-such-rev")


def test_headers_that_do_not_preprocess_or_parse(xen_clone, cache, tmp_path):
    public = xen_clone / "xen/include/public"
    fbif = public / "io/fbif.h"
    guard = "#define __XEN_PUBLIC_IO_FBIF_H__"
    assert guard in fbif.read_text()
    fbif.write_text(fbif.read_text().replace(guard, guard + '\n#include "no-such.h"', 1))
    vcpu = public / "vcpu.h"
    vcpu.write_text(vcpu.read_text() + "\nstruct broken { int x } ;\n")
    out = tmp_path / "abi.json"
    proc = run("dump", "--tree", str(xen_clone), "--arch", "x86_64", "-o", str(out),
               cache=cache)
    assert proc.returncode == 0, proc.stderr
    failed = {f["header"]: f["error"] for f in
              json.loads(out.read_text())["arches"]["x86_64"]["failed"]}
    assert set(failed) == {"dom0_ops.h", "io/fbif.h", "vcpu.h"}
    assert failed["io/fbif.h"].startswith("io/fbif.h:") and "no-such.h" in failed["io/fbif.h"]
    assert failed["vcpu.h"].startswith("vcpu.h:")
    assert "\n" not in failed["vcpu.h"]


def test_unsafe_include_is_refused(xen_clone, cache, tmp_path):
    secret = tmp_path / "secret.h"
    secret.write_text("#define XENPATCH_SECRET 42\n")
    xen_h = xen_clone / "xen/include/public/hvm/e820.h"
    rel = os.path.relpath(secret, xen_h.parent)
    xen_h.write_text(xen_h.read_text() + f'\n#include "{rel}"\n#include "{secret}"\n')
    out = tmp_path / "abi.json"
    proc = run("dump", "--tree", str(xen_clone), "--arch", "x86_64", "-o", str(out),
               cache=cache)
    assert proc.returncode == 0, proc.stderr
    arch = json.loads(out.read_text())["arches"]["x86_64"]
    failed = {f["header"]: f["error"] for f in arch["failed"]}
    assert "unsafe include" in failed["hvm/e820.h"]
    assert "XENPATCH_SECRET" not in out.read_text()


def test_no_tree_configured(tmp_path, cache):
    config = tmp_path / "config.toml"
    config.write_text('[tree]\npath = "does-not-exist"\n')
    proc = run_cli("--config", str(config), "abi", "dump", cwd=tmp_path,
                   env={"XENPATCH_ABI_CACHE": str(cache)})
    one_line_error(proc, 2, "does-not-exist")


def test_check_exit_codes(xen_tree, cache):
    """4.17.5 has no error-level finding: exit 0 (exit 1 on injected mistakes:
    tests/test_abi_check.py)."""
    proc = run("check", "--tree", str(xen_tree), "--format", "json", cache=cache)
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "xenpatch-check/1"
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert (proc.returncode, errors) == (0, []), proc.stderr
    assert doc["findings"], "the real tree has warnings and infos"


def test_diff_of_a_dump_file_and_a_changed_tree(xen_tree, xen_clone, cache, tmp_path):
    old = tmp_path / "old.json"
    assert run("dump", "--tree", str(xen_tree), "--arch", "x86_64", "-o", str(old),
               cache=cache).returncode == 0
    same = run("diff", str(old), str(xen_tree), "--arch", "x86_64", cache=cache)
    assert same.returncode == 0, same.stderr
    vcpu = xen_clone / "xen/include/public/vcpu.h"
    text = vcpu.read_text()
    assert "struct vcpu_register_vcpu_info {\n    uint64_t mfn;" in text
    vcpu.write_text(text.replace("struct vcpu_register_vcpu_info {\n    uint64_t mfn;",
                                 "struct vcpu_register_vcpu_info {\n    uint32_t mfn;", 1))
    changed = run("diff", str(old), str(xen_clone), "--arch", "x86_64", "--format", "json",
                  cache=cache)
    assert changed.returncode == 1, changed.stderr
    kinds = {(c["kind"], c["name"]) for c in json.loads(changed.stdout)["changes"]}
    assert ("type-size-changed", "struct vcpu_register_vcpu_info") in kinds
    missing = run("diff", str(tmp_path / "nope.json"), str(old), cache=cache)
    one_line_error(missing, 2, "nope.json")
