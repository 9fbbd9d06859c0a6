"""`xenpatch generate` end to end on the real Xen 4.17.5 tree: series, goldens, safety, bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import check_golden
from conftest import one_line_error as one_line
from conftest import run_cli as xenpatch_cli

from xenpatch.generate import selfcheck

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CHANGE = ROOT / "xenpatch" / "defaults" / "changes" / "sif-hvm-ghcb.toml"
GOLDEN = ROOT / "tests" / "golden" / "generate"
EPOCH = "1767225600"  # 2026-01-01 00:00:00 UTC


def run_cli(gitconfig: Path, *args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    return xenpatch_cli(*args, cwd=cwd, env={"GIT_CONFIG_GLOBAL": str(gitconfig),
                                             "SOURCE_DATE_EPOCH": EPOCH, **env})


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, env={**os.environ, **(env or {})}).stdout


def checkout_state(repo: Path) -> tuple[str, ...]:
    """Everything of the user's checkout that generate must leave alone."""
    return (git(repo, "status", "--porcelain=v1", "--untracked-files=all"),
            git(repo, "rev-parse", "HEAD"), git(repo, "symbolic-ref", "HEAD"),
            git(repo, "stash", "list"), git(repo, "for-each-ref"), git(repo, "ls-files", "-s"),
            git(repo, "config", "--local", "--list"))


def commit_all(repo: Path, message: str, gitconfig: Path) -> None:
    env = {"GIT_CONFIG_GLOBAL": str(gitconfig)}
    git(repo, "commit", "-qam", message, env=env)


def compare_golden(files: list[Path], name: str, regen: bool) -> None:
    golden = GOLDEN / name
    if regen:
        for old in golden.glob("*.patch"):
            old.unlink()
    for f in files:
        check_golden(golden / f.name, f.read_text(), regen)
    assert sorted(p.name for p in golden.glob("*.patch")) == [f.name for f in files]


def one_line_error(proc: subprocess.CompletedProcess, code: int, pattern: str) -> None:
    one_line(proc, code, pattern=pattern)


def test_series_on_real_tree_applies_and_leaves_checkout_alone(xen_clone, tmp_path, gitconfig,
                                                               regen_golden):
    # A user's checkout with a stash and an untracked file.
    (xen_clone / "README").write_text("local edit\n")
    git(xen_clone, "stash", "-q", env={"GIT_CONFIG_GLOBAL": str(gitconfig)})
    (xen_clone / "notes.txt").write_text("untracked\n")
    before = checkout_state(xen_clone)
    out = tmp_path / "series"
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_clone), "--out", str(out),
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert checkout_state(xen_clone) == before
    summary = json.loads(proc.stdout)
    assert summary["schema"] == "xenpatch-generate/1" and summary["ok"] and summary["bit"] == 5
    assert [c["name"] for c in summary["checks"]] == ["git-am", "abi-check", "abi-diff",
                                                      "header-compile", "columns", "meaning"]
    assert all(c["ok"] for c in summary["checks"])
    assert "headers.chk xen.h, headers++.chk xen.h" in summary["checks"][3]["details"]
    files = sorted(out.glob("*.patch"))
    assert [f.name[:5] for f in files] == ["0000-", "0001-", "0002-", "0003-"]
    assert summary["subjects"][1] == ("[RFC PATCH 1/3] xen/public: introduce SIF_HVM_GHCB for "
                                      "SEV-ES/SNP guests")  # unfolded
    # 4.17.5's Go bindings match its IDL: nothing stale.  Its CHANGELOG.md's
    # newest section is the 4.17.5 release, and it has no SEV domain flag.
    assert [n.split(":")[0] for n in summary["notes"]] == ["CHANGELOG.md", "requires"]
    assert "no domain creation flag for SEV" in summary["notes"][1]
    assert summary["checks"][5]["details"] == [
        "xen/include/public/xen.h (comment)", f"{files[1].name} (message)",
        "docs/misc/pvh.pandoc", "docs/man/xl.cfg.5.pod.in"]
    compare_golden(files, "sif-hvm-ghcb", regen_golden)
    # Patch 3 carries the Go bindings regenerated from the edited IDL, and only
    # the new field's lines.
    patch3 = files[3].read_text()
    assert " tools/golang/xenlight/helpers.gen.go |  6 ++++++\n" in patch3
    assert " tools/golang/xenlight/types.gen.go   |  1 +\n" in patch3
    assert "+Ghcb Defbool\n" in patch3
    assert "+if err := x.ArchX86.Ghcb.fromC(&xc.arch_x86.ghcb);err != nil {\n" in patch3
    assert "+if err := x.ArchX86.Ghcb.toC(&xc.arch_x86.ghcb); err != nil {\n" in patch3
    cover = files[0].read_text()
    assert "Based on the RFC by Teddy Astie <teddy.astie@vates.tech>" in cover
    assert "this tree cannot create an SEV-ES/SNP guest yet" in cover
    assert not any("teddy" in line.lower() for f in files for line in f.read_text().splitlines()
                   if line.lower().startswith("signed-off-by"))

    # git am in a fresh clone of the real tree.
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", "--shared", str(xen_clone), str(fresh)], check=True)
    git(fresh, "am", "-q", *map(str, files[1:]), env={"GIT_CONFIG_GLOBAL": str(gitconfig)})
    assert git(fresh, "log", "--format=%s", "-3").splitlines() == [
        "tools/libxl: add the x86 ghcb option for PVH guests",
        "tools/libxenguest: set SIF_HVM_GHCB in the PVH start info",
        "xen/public: introduce SIF_HVM_GHCB for SEV-ES/SNP guests"]
    assert "Signed-off-by: Test User <test@example.org>" in git(fresh, "log", "-1", "--format=%B")
    xen_h = (fresh / "xen/include/public/xen.h").read_text().splitlines()
    i = next(n for n, line in enumerate(xen_h) if line.startswith("#define SIF_HVM_GHCB"))
    assert xen_h[i - 2].startswith("#define SIF_VIRT_P2M_4TOOLS")  # then its continuation line
    assert xen_h[i].index("(1<<5)") == xen_h[i - 6].index("(1<<0)") == 26  # aligned
    # The comment wraps in the SIF_ block's continuation comments, all < 80.
    comment = xen_h[i:i + 6]
    assert xen_h[i + 6].startswith("#define SIF_PM_MASK")
    assert all(len(line) <= 79 and line.endswith(" */") for line in comment)
    assert {line.index("/*") for line in comment} == {34}
    pvh = (fresh / "docs/misc/pvh.pandoc").read_text()
    assert pvh.index("## SEV-ES/SNP guests ##") < pvh.index("## AP startup ##")
    hunks = {
        "tools/include/xenguest.h": "    bool hvm_ghcb;\n};",
        "tools/libs/guest/xg_dom_x86.c":
            "    if ( dom->hvm_ghcb )\n        start_info->flags |= SIF_HVM_GHCB;",
        "tools/libs/light/libxl_types.idl":
            '("arch_x86", Struct(None, [("msr_relaxed", libxl_defbool),\n'
            '                               ("ghcb", libxl_defbool),\n',
        "tools/include/libxl.h": "#define LIBXL_HAVE_X86_GHCB 1",
        "tools/libs/light/libxl_x86.c": "    libxl_defbool_setdefault(&b_info->arch_x86.msr_relaxed, "
            "false);\n    libxl_defbool_setdefault(&b_info->arch_x86.ghcb, false);\n",
        "tools/libs/light/libxl_arm.c": 'LOG(ERROR, "ghcb=1 is only supported on x86");',
        "tools/xl/xl_parse.c": 'xlu_cfg_get_defbool(config, "ghcb", &b_info->arch_x86.ghcb, 0);',
        "docs/man/xl.cfg.5.pod.in": "=item B<ghcb=BOOLEAN>",
    }
    for path, text in hunks.items():
        assert text in (fresh / path).read_text(), path
    x86 = (fresh / "tools/libs/light/libxl_x86.c").read_text()
    assert x86.index("static bool ghcb_is_valid(") < x86.index("int libxl__arch_domain_prepare")
    assert "    if (!ghcb_is_valid(gc, &d_config->b_info))\n        return ERROR_INVAL;\n\n" \
        "    return 0;\n}\n" in x86
    # The x86-only option touches no common libxl code (u.pvh is Arm's guest type too).
    assert not any(f"b/tools/libs/light/libxl_{name}.c" in f.read_text()
                   for f in files for name in ("create", "dom"))
    # The committed bindings are what the tree's own generator makes of the
    # committed IDL (as tools/golang/xenlight/Makefile runs it).
    go_dir = fresh / "tools/golang/xenlight"
    subprocess.run([sys.executable, "gengotypes.py", str(fresh / "tools/libs/light/libxl_types.idl"),
                    "types.gen.go", "helpers.gen.go"], cwd=go_dir, check=True, capture_output=True,
                   env={**os.environ, "LIBXL_SRC_DIR": str(fresh / "tools/libs/light")})
    assert git(fresh, "status", "--porcelain") == ""

    # A rerun on the same base, this time on the tree fetched from Debian
    # (no --tree, [tree].path empty), gives byte-identical files.
    again = tmp_path / "again"
    proc = run_cli(gitconfig, "generate", "--out", str(again), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 4 files" in proc.stdout
    assert [f.read_bytes() for f in sorted(again.glob("*.patch"))] == [f.read_bytes() for f in files]


def test_version_2_changelog_and_no_rfc(xen_tree, tmp_path, gitconfig):
    # A change without a [changes.NAME.v2] table: --changelog gives its changes.
    config = _config_with(tmp_path, "\n[changes.sif-hvm-ghcb.v2]\n", "\n[unused]\n")
    text = config.read_text()
    config.write_text(text[:text.index("\n[unused]\n")])
    out = tmp_path / "v2"
    proc = run_cli(gitconfig, "--config", str(config), "generate", "--tree", str(xen_tree),
                   "--out", str(out), "--version", "2", "--no-rfc", "--changelog",
                   "- rebased onto 4.17.5", "--no-signoff")
    assert proc.returncode == 0, proc.stderr
    assert "branch xenpatch/sif-hvm-ghcb-v2" in proc.stdout
    assert "note v2 is not threaded to v1: give --in-reply-to" in proc.stdout
    files = sorted(out.glob("*.patch"))
    cover = files[0].read_text()
    assert "Subject: [PATCH v2 0/3] pvh: Introduce SIF_HVM_GHCB" in cover
    assert "Changes in v2:\n- rebased onto 4.17.5\n" in cover
    assert re.search(r"^base-commit: [0-9a-f]{40}$", cover, re.M)
    assert " 12 files changed, 97 insertions(+)" in cover
    assert "Subject: [PATCH v2 2/3] tools/libxenguest" in files[2].read_text()
    assert not any("Signed-off-by" in f.read_text() for f in files)
    for f in files:
        for line in f.read_text().split("\n---\n", 1)[0].splitlines()[4:]:
            assert len(line) <= 75, (f.name, line)
    # Without the table and without --changelog, version 2 is refused.
    proc = run_cli(gitconfig, "--config", str(config), "generate", "--tree", str(xen_tree),
                   "--out", str(tmp_path / "v2b"), "--version", "2")
    one_line_error(proc, 2, r"changes\.sif-hvm-ghcb\.v2 is missing: version 2 needs")


def test_cdf_example_bit_number_idiom_and_max_marker(xen_tree, tmp_path, gitconfig, regen_golden):
    out = tmp_path / "cdf"
    proc = run_cli(gitconfig, "--config", str(ROOT / "examples" / "cdf-flag.toml"), "generate",
                   "--tree", str(xen_tree), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "bit 8" in proc.stdout
    files = sorted(out.glob("*.patch"))
    patch = files[1].read_text()
    assert "+#define _XEN_DOMCTL_CDF_trap_unmapped_accesses 8\n" in patch
    # 92 columns on one line: the value goes on a continuation line (< 80).
    assert ("+#define XEN_DOMCTL_CDF_trap_unmapped_accesses \\\n"
            "+    (1U << _XEN_DOMCTL_CDF_trap_unmapped_accesses)\n") in patch
    assert "-#define XEN_DOMCTL_CDF_MAX XEN_DOMCTL_CDF_vpmu\n" in patch
    assert "+#define XEN_DOMCTL_CDF_MAX XEN_DOMCTL_CDF_trap_unmapped_accesses\n" in patch
    ocaml = files[2].read_text()
    assert "Subject: [RFC PATCH 2/2] tools/ocaml: add CDF_TRAP_UNMAPPED_ACCESSES" in ocaml
    assert " \t| CDF_VPMU\n+\t| CDF_TRAP_UNMAPPED_ACCESSES\n \n" in ocaml  # xenctrl.ml: tabs
    assert "   | CDF_VPMU\n+  | CDF_TRAP_UNMAPPED_ACCESSES\n \n" in ocaml  # xenctrl.mli: spaces
    compare_golden(files, "cdf-trap-unmapped", regen_golden)

    # Xen's own check of the OCaml variant against the bits: abi-check writes
    # BUILD_BUG_ON()s (tools/ocaml/libs/xc/Makefile), which must compile.
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", "--shared", str(xen_tree), str(fresh)], check=True)
    git(fresh, "am", "-q", *map(str, files[1:]), env={"GIT_CONFIG_GLOBAL": str(gitconfig)})
    xc = fresh / "tools/ocaml/libs/xc"
    checks = subprocess.run(["perl", "-w", "abi-check", "xenctrl_stubs.c", "xenctrl.ml"], cwd=xc,
                            check=True, capture_output=True, text=True).stdout
    assert ("BUILD_BUG_ON( XEN_DOMCTL_CDF_trap_unmapped_accesses != (1u << 8)  );"
            in checks)
    assert "BUILD_BUG_ON( XEN_DOMCTL_CDF_MAX             != (1u << 8)  );" in checks
    probe = tmp_path / "abi_check.c"
    probe.write_text("#include <stdint.h>\n#include <xen/xen.h>\n#include <xen/domctl.h>\n"
                     "#include <xen/sysctl.h>\n"
                     "#define BUILD_BUG_ON(c) _Static_assert(!(c), #c)\n"
                     f"void f(void) {{\n{checks}}}\n")
    include = tmp_path / "probe-include"
    include.mkdir()
    (include / "xen").symlink_to(fresh / "xen/include/public")
    cc = subprocess.run(["gcc", "-fsyntax-only", "-D__XEN_TOOLS__", "-I", str(include),
                         str(probe)], capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr


@pytest.mark.parametrize("template, failed, shown", [
    # The flag put into SIF_PM_MASK's reserved byte.
    ('{{ ("#define " ~ name) | pad(value_column) }}(1<<{{ bit + 3 }})\n',
     "abi-check, abi-diff", ("FAIL abi-check", "abi-reserved-bits", "FAIL abi-diff",
                             "SIF_HVM_GHCB = 256")),
    # A define followed by C that does not compile.
    ('{{ ("#define " ~ name) | pad(value_column) }}(1<<{{ bit }})\nstruct sif_oops { int x };\n',
     "header-compile", ("FAIL header-compile", "headers.chk: xen.h:", "headers++.chk: xen.h:")),
])
def test_failed_self_check_writes_nothing(xen_tree, tmp_path, gitconfig, template, failed, shown):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "define.h.j2").write_text(template)
    config = tmp_path / "config.toml"
    shipped = (ROOT / "config.toml").read_text() + SHIPPED_CHANGE.read_text()
    config.write_text(shipped.replace('templates = ""', f'templates = "{templates}"', 1))
    out = tmp_path / "series"
    proc = run_cli(gitconfig, "--config", str(config), "generate", "--tree", str(xen_tree),
                   "--out", str(out))
    assert proc.returncode == 1
    for text in shown + ("nothing written",):
        assert text in proc.stdout, proc.stdout
    one_line_error(proc, 1, rf"self-check failed \(.*{failed}.*\): nothing written")
    assert not out.exists()


# --- bad input: exit 2, one line naming the culprit, nothing written ----------

def _config_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "config.toml").read_text() + SHIPPED_CHANGE.read_text()
    assert old in text
    config = tmp_path / "config.toml"
    config.write_text(text.replace(old, new, 1))
    return config


@pytest.mark.parametrize("bit, message", [
    ("3", r"xen/include/public/xen.h:873: bit 3 is taken by SIF_MOD_START_PFN \(1<<3\)"),
    ("8", r"xen/include/public/xen.h:876: bit 8 lies in SIF_PM_MASK \(bits 8-15\)"),
])
def test_explicit_bit_taken_or_reserved(xen_tree, tmp_path, gitconfig, bit, message):
    config = _config_with(tmp_path, '\nbit = "auto"\n', f"\nbit = {bit}\n")
    out = tmp_path / "series"
    proc = run_cli(gitconfig, "--config", str(config), "generate", "--tree", str(xen_tree),
                   "--out", str(out))
    one_line_error(proc, 2, message)
    assert not out.exists()


def test_name_already_defined(xen_clone, tmp_path, gitconfig):
    header = xen_clone / "xen/include/public/xen.h"
    text = header.read_text()
    header.write_text(text.replace("#define SIF_PM_MASK",
                                   "#define SIF_HVM_GHCB (1<<6)\n#define SIF_PM_MASK", 1))
    commit_all(xen_clone, "add SIF_HVM_GHCB by hand", gitconfig)
    line = header.read_text().splitlines().index("#define SIF_HVM_GHCB (1<<6)") + 1
    out = tmp_path / "series"
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_clone), "--out", str(out))
    one_line_error(proc, 2, rf"xen/include/public/xen.h:{line}: SIF_HVM_GHCB is already defined")
    assert not out.exists()


def test_missing_anchor_names_file_and_anchor(xen_clone, tmp_path, gitconfig):
    pod = xen_clone / "docs/man/xl.cfg.5.pod.in"
    pod.write_text(pod.read_text().replace("=head3 x86\n", "=head3 x86-64\n"))
    commit_all(xen_clone, "a tree whose layout differs", gitconfig)
    out = tmp_path / "series"
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_clone), "--out", str(out))
    one_line_error(proc, 2, r"docs/man/xl.cfg.5.pod.in: anchor not found: the '=back' closing "
                            r"'=head3 x86' \(Architecture Specific options\)")
    assert not out.exists()
    # An x86 file whose hook moved away: named with the function looked in.
    x86 = xen_clone / "tools/libs/light/libxl_x86.c"
    x86.write_text(x86.read_text().replace("libxl_defbool_setdefault(&b_info->arch_x86.msr_relaxed",
                                           "libxl_defbool_setdefault(&b_info->arch_x86.other"))
    pod.write_text(pod.read_text().replace("=head3 x86-64\n", "=head3 x86\n"))
    commit_all(xen_clone, "no msr_relaxed default", gitconfig)
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_clone), "--out", str(out))
    one_line_error(proc, 2, r"tools/libs/light/libxl_x86.c: anchor not found: the msr_relaxed "
                            r"default in libxl__arch_domain_build_info_setdefault\(\)")
    assert not out.exists()


def test_go_bindings_stale_or_without_generator(xen_clone, tmp_path, gitconfig):
    go = xen_clone / "tools/golang/xenlight"
    types = go / "types.gen.go"
    lines = types.read_text().splitlines(keepends=True)
    lines[20] = lines[20].rstrip("\n") + " // edited by hand\n"  # stale, far from the pvh struct
    types.write_text("".join(lines))
    commit_all(xen_clone, "bindings out of date", gitconfig)
    out = tmp_path / "stale"
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_clone), "--out", str(out),
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["notes"][2:] == [
        "tools/golang/xenlight/types.gen.go was stale relative to tools/libs/light/libxl_types.idl "
        "at the base: only this change's hunks are carried (run gengotypes.py in a separate patch)"]
    patch3 = sorted(out.glob("*.patch"))[3].read_text()
    go_diff = patch3.split("diff --git a/tools/golang/xenlight/types.gen.go")[1].split("diff --git")[0]
    assert [line for line in go_diff.splitlines() if line[:1] in "+-"
            and not line.startswith(("+++", "---"))] == ["+Ghcb Defbool"]
    assert " tools/golang/xenlight/helpers.gen.go |  6 ++++++\n" in patch3

    (go / "gengotypes.py").unlink()
    commit_all(xen_clone, "no generator", gitconfig)
    out = tmp_path / "nogen"
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_clone), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert ("  note tools/golang/xenlight/gengotypes.py not in the tree: the Go bindings are not "
            "regenerated\n") in proc.stdout
    assert "tools/golang" not in sorted(out.glob("*.patch"))[3].read_text()


def test_dirty_missing_and_non_git_trees(xen_clone, tmp_path, gitconfig):
    out = tmp_path / "series"
    (xen_clone / "xen/include/public/xen.h").write_text("/* edited */\n")
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_clone), "--out", str(out))
    one_line_error(proc, 2, rf"--tree {re.escape(str(xen_clone))}: has uncommitted changes")
    proc = run_cli(gitconfig, "generate", "--tree", str(tmp_path / "nowhere"), "--out", str(out))
    one_line_error(proc, 2, r"--tree .*nowhere: no such directory")
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = run_cli(gitconfig, "generate", "--tree", str(plain), "--out", str(out))
    one_line_error(proc, 2, r"plain: not a git repository")
    assert not out.exists()


def test_bad_base_and_bad_config(xen_tree, tmp_path, gitconfig):
    out = tmp_path / "series"
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_tree), "--base", "no-such-rev",
                   "--out", str(out))
    one_line_error(proc, 2, r"unknown revision 'no-such-rev'")
    proc = run_cli(gitconfig, "generate", "no-such-change", "--tree", str(xen_tree), "--out", str(out))
    one_line_error(proc, 2, r"changes.no-such-change: no such change")
    config = _config_with(tmp_path, '\nkind = "flag"\n', '\nkind = "flag"\nwings = 2\n')
    proc = run_cli(gitconfig, "--config", str(config), "generate", "--tree", str(xen_tree),
                   "--out", str(out))
    one_line_error(proc, 2, r"unknown key changes.sif-hvm-ghcb.wings")
    config = _config_with(tmp_path, '\nfamily = "SIF_"\n', '\nfamily = "SIFF_"\n')
    proc = run_cli(gitconfig, "--config", str(config), "generate", "--tree", str(xen_tree),
                   "--out", str(out))
    one_line_error(proc, 2, r"name = 'SIF_HVM_GHCB': must start with the family 'SIFF_'")
    bad_toml = tmp_path / "broken.toml"
    bad_toml.write_text("[changes.x\n")
    proc = run_cli(gitconfig, "--config", str(bad_toml), "generate", "--tree", str(xen_tree),
                   "--out", str(out))
    one_line_error(proc, 2, r"broken.toml: not valid TOML")
    no_identity = tmp_path / "empty-gitconfig"
    no_identity.write_text("")
    proc = run_cli(no_identity, "generate", "--tree", str(xen_tree), "--out", str(out),
                   HOME=str(tmp_path))
    one_line_error(proc, 2, r"identity.name is empty and git config user.name is not set")
    assert not out.exists()


def test_out_that_is_not_a_series_directory(xen_tree, tmp_path, gitconfig):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete\n")
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_tree), "--out", str(out))
    one_line_error(proc, 2, r"--out .*precious: exists and is not a series directory")
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_cdf_ocaml_hunks_match_xens_own_commit(xen_git, tmp_path, gitconfig):
    # Replayed on the commit before Xen added the flag (980aff4e8f), the OCaml
    # patch gives exactly the files of Xen's own ab02a120c0.
    tree = tmp_path / "xen"
    subprocess.run(["git", "clone", "-q", "--shared", str(xen_git), str(tree)], check=True)
    git(tree, "checkout", "-q", "-b", "before", "980aff4e8f~1")
    out = tmp_path / "cdf"
    proc = run_cli(gitconfig, "--config", str(ROOT / "examples" / "cdf-flag.toml"), "generate",
                   "--tree", str(tree), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ocaml = sorted(out.glob("*.patch"))[2].read_text()
    for path in ("tools/ocaml/libs/xc/xenctrl.ml", "tools/ocaml/libs/xc/xenctrl.mli"):
        old, new = (git(tree, "rev-parse", "--short=10", f"{rev}:{path}").strip()
                    for rev in ("ab02a120c0~1", "ab02a120c0"))
        assert f"diff --git a/{path} b/{path}\nindex {old}..{new} 100644\n" in ocaml


def _mbox(path: Path) -> list:
    import mailbox
    return list(mailbox.mbox(str(path)))


def test_v2_answers_the_review_and_threads_to_v1(xen_tree, tmp_path, gitconfig, regen_golden):
    v1 = tmp_path / "v1"
    assert run_cli(gitconfig, "generate", "--tree", str(xen_tree), "--out", str(v1)).returncode == 0
    # v1 as send would mail it (a dry run): its cover letter's Message-ID.
    proc = run_cli(gitconfig, "send", str(v1), "--tree", str(xen_tree), "--mbox",
                   str(tmp_path / "v1.mbox"))
    assert proc.returncode == 0, proc.stderr
    v1_cover = _mbox(tmp_path / "v1.mbox")[0]
    assert str(v1_cover["Subject"]).startswith("[RFC PATCH 0/3]")
    v1_id = v1_cover["Message-ID"]

    v2 = tmp_path / "v2"
    proc = run_cli(gitconfig, "generate", "--tree", str(xen_tree), "--out", str(v2),
                   "--version", "2", "--in-reply-to", v1_id)
    assert proc.returncode == 0, proc.stderr
    assert f"threaded: every file replies to {v1_id}" in proc.stdout
    files = sorted(v2.glob("*.patch"))
    compare_golden(files, "sif-hvm-ghcb-v2", regen_golden)
    texts = [f.read_text() for f in files]
    assert all(f"\nIn-Reply-To: {v1_id}\n" in t.split("\n\n", 1)[0] for t in texts)
    assert [t.split("Subject: ", 1)[1][:18] for t in texts] == [
        f"[RFC PATCH v2 {n}/3]" for n in range(4)]
    # The cover letter answers each point of the review of v1 (seed thread).
    changes = texts[0].split("Changes since v1:\n", 1)[1].split("\n\n", 1)[0]
    items = [i for i in re.split(r"(?m)^ - ", changes) if i.strip()]
    assert [i.split(" (Roger)")[0] for i in items] == [
        "Vendor terminology in a vendor-neutral interface",
        "Duplicating an architectural discovery path",
        "How OVMF and grub pass this on", "More SEV data as SIF_ flags later"]
    flat = " ".join(changes.split())
    for words in ("the name stays", "SIF_VIRT_P2M_4TOOLS", "CPUID raises #VC",
                  "location is undefined for PVH", "PVH direct boot", "PVH modules"):
        assert words in flat, words
    # Each patch's "Changes in v2:" sits after its "---", where git am drops it.
    assert "\n---\nChanges in v2:\n - Say in the comment" in texts[1]
    assert "Changes in v2" not in texts[2]  # patch 2 did not change
    assert "\n---\nChanges in v2:\n - Refuse ghcb=1 for guests other than PVH" in texts[3]
    assert "LOG(ERROR, \"ghcb=1 is only supported for PVH guests\");" in texts[3]
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", "--shared", str(xen_tree), str(fresh)], check=True)
    git(fresh, "am", "-q", *map(str, files[1:]), env={"GIT_CONFIG_GLOBAL": str(gitconfig)})
    assert "Changes in v2" not in git(fresh, "log", "-3", "--format=%B")

    # send's dry run: v2's cover replies to v1's, its patches to v2's cover.
    proc = run_cli(gitconfig, "send", str(v2), "--tree", str(xen_tree), "--in-reply-to", v1_id,
                   "--mbox", str(tmp_path / "v2.mbox"))
    assert proc.returncode == 0, proc.stderr
    cover, *patches = _mbox(tmp_path / "v2.mbox")
    assert cover["In-Reply-To"] == v1_id and cover["References"] == v1_id
    for p in patches:
        assert p["In-Reply-To"] == cover["Message-ID"]
        assert p["References"].split() == [v1_id, cover["Message-ID"]]

    # without --in-reply-to, send threads by the In-Reply-To: generate wrote into the
    # files, as git send-email does: the same mails.
    proc = run_cli(gitconfig, "send", str(v2), "--tree", str(xen_tree),
                   "--mbox", str(tmp_path / "v2-implicit.mbox"))
    assert proc.returncode == 0, proc.stderr
    assert [(m["In-Reply-To"], m["References"]) for m in _mbox(tmp_path / "v2-implicit.mbox")] \
        == [(m["In-Reply-To"], m["References"]) for m in (cover, *patches)]


@pytest.mark.parametrize("version", ["1", "2"])
def test_master_columns_meaning_and_changelog(xen_git, tmp_path, gitconfig, version):
    # xen.git master (local only): other file contents, same anchors; its
    # CHANGELOG.md has an UNRELEASED section, so patch 3 adds the entry.
    tree = tmp_path / "master"
    subprocess.run(["git", "clone", "-q", "--shared", "--branch", "master", str(xen_git),
                    str(tree)], check=True)
    out = tmp_path / "series"
    proc = run_cli(gitconfig, "generate", "--tree", str(tree), "--out", str(out), "--format",
                   "json", "--version", version)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["columns"]["ok"] and checks["meaning"]["ok"]
    assert len(checks["meaning"]["details"]) == 4
    patch3 = sorted(out.glob("*.patch"))[3].read_text()
    entry = patch3.split("+++ b/CHANGELOG.md\n", 1)[1].split("\ndiff --git", 1)[0]
    assert " ### Added\n+ - On x86, the xl.cfg option \"ghcb\"" in entry
    for text in (f.read_text() for f in sorted(out.glob("*.patch"))):
        assert not selfcheck.column_findings("x.patch", text)
