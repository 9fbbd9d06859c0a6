"""`xenpatch maintainers` against the real tree's own scripts/get_maintainer.pl (differential)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from xenpatch.cli import main
from xenpatch.errors import InputError
from xenpatch.mail import maintainers as mt
from xenpatch.mail.tree import recipients_for

# Files every section of the 4.17 MAINTAINERS cares about, plus the tricky patterns:
# THE REST's "F: *" (top-level files) and "F: */", X: exclusions, braces, "?"-free
# globs, directories given without "/" (tools/golang), Orphan and Odd Fixes sections.
PICKED = (
    "xen/include/public/xen.h", "xen/include/public/arch-x86/xen.h",
    "xen/include/public/arch-arm.h", "xen/include/public/io/blkif.h",
    "xen/include/public/hvm/ioreq.h", "xen/include/public/argo.h",
    "xen/include/public/xsm/flask_op.h", "tools/libs/light/libxl_dom.c",
    "tools/libs/light/libxl_remus_disk_drbd.c", "tools/libs/light/libxl_netbuffer.c",
    "tools/libs/guest/xg_dom_x86.c", "tools/include/xenguest.h", "tools/include/libxl.h",
    "tools/xl/xl_parse.c", "tools/xenstore/xenstored_core.c", "tools/ocaml/Makefile",
    "tools/golang/xenlight/gengotypes.py", "tools/python/Makefile",
    "tools/libs/light/libxl_types.idl", "docs/misc/pvh.pandoc", "docs/man/xl.cfg.5.pod.in",
    "docs/misc/xen-command-line.pandoc", "docs/misc/xsm-flask.txt",
    "xen/drivers/passthrough/pci.c", "xen/drivers/passthrough/amd/iommu_init.c",
    "xen/drivers/passthrough/vtd/iommu.c", "xen/drivers/passthrough/arm/smmu.c",
    "xen/drivers/passthrough/arm/smmu-v3.c", "xen/drivers/passthrough/device_tree.c",
    "xen/arch/x86/acpi/boot.c", "xen/arch/x86/acpi/power.c", "xen/arch/x86/tboot.c",
    "xen/arch/x86/mm/mem_paging.c", "xen/arch/x86/mm/mem_sharing.c",
    "xen/arch/x86/mm/shadow/common.c", "xen/arch/x86/hvm/svm/svm.c",
    "xen/arch/x86/hvm/vmx/vmx.c", "xen/arch/x86/hvm/emulate.c", "xen/arch/x86/hvm/monitor.c",
    "xen/arch/arm/vgic.c", "xen/arch/arm/tee/optee.c", "xen/arch/arm/monitor.c",
    "xen/common/sched/credit2.c", "xen/common/sched/cpupool.c", "xen/common/sched/rt.c",
    "xen/common/sched/arinc653.c", "xen/common/kexec.c", "xen/common/kimage.c",
    "xen/common/livepatch.c", "xen/common/argo.c", "xen/common/hypfs.c",
    "xen/common/device_tree.c", "xen/common/vm_event.c", "xen/include/xen/iommu.h",
    "xen/include/xen/vm_event.h", "xen/include/public/vm_event.h", "xen/xsm/flask/hooks.c",
    "xen/common/efi/boot.c", "xen/arch/x86/efi/stub.c", "xen/tools/kconfig/conf.c",
    "xen/lib/x86/cpuid.c", "xen/arch/riscv/Makefile", "stubdom/Makefile", "stubdom/configure",
    "config/MiniOS.mk", "config/Stubdom.mk.in", "config/Paths.mk.in", "m4/stubdom.m4",
    "configure", "configure.ac", "tools/configure.ac", "autogen.sh", "install.sh",
    "CHANGELOG.md", "MAINTAINERS", "README", "Config.mk", ".gitlab-ci.yml",
    "automation/build/README.md", "docs/README.remus", "tools/hotplug/Linux/block-drbd-probe",
    "tools/firmware/hvmloader/hvmloader.c", "tools/misc/xen-cpuid.c", "tools/misc/xen-access.c",
    "tools/debugger/kdd/kdd.c", "tools/debugger/gdbsx/gx/gx_main.c", "tools/flask/policy/Makefile",
    "tools/xentrace/xentrace.c", "xen/common/trace.c",
    "xen/arch/x86/include/asm/hvm/vmx/vmcs.h", "xen/arch/x86/include/asm/guest/hyperv.h",
)
THE_REST = {
    "Andrew Cooper <andrew.cooper3@citrix.com>", "George Dunlap <george.dunlap@citrix.com>",
    "Jan Beulich <jbeulich@suse.com>", "Julien Grall <julien@xen.org>",
    "Stefano Stabellini <sstabellini@kernel.org>", "Wei Liu <wl@xen.org>"}
DIRECTORIES = ("xen/drivers/passthrough", "tools/libs/light/", "xen/include/public", "docs")


def get_maintainer_pl(tree: Path, args: list[str], home: Path) -> set[str]:
    """Run the tree's own script the way scripts/add_maintainers.pl does (its defaults),
    spelling out the offline, history-free options; HOME has no .get_maintainer.conf."""
    proc = subprocess.run(
        ["perl", "scripts/get_maintainer.pl", "--no-git", "--no-git-fallback", "--no-rolestats",
         "--no-remove-duplicates", *args],
        cwd=tree, capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": str(home)})
    assert proc.returncode == 0, proc.stderr.decode()
    return set(proc.stdout.decode("utf-8").splitlines())


def ours(tree: Path, args: list[str]) -> set[str]:
    found = recipients_for(tree, args)
    assert not set(found.to) & set(found.cc)
    return set(found.to) | set(found.cc)


def sampled_files(tree: Path) -> list[str]:
    """Every 50th tracked file of the tree, spread over all of it."""
    listed = subprocess.run(["git", "ls-files"], cwd=tree, capture_output=True, text=True,
                            check=True).stdout.splitlines()
    return listed[::50]


def test_files_match_get_maintainer_pl(xen_tree: Path, tmp_path: Path) -> None:
    files = list(PICKED) + [f for f in sampled_files(xen_tree) if f not in PICKED]
    assert len(files) >= 140
    missing = [f for f in files if not (xen_tree / f).exists()]
    assert not missing
    differ = {}
    for f in files:
        want, got = get_maintainer_pl(xen_tree, ["-f", f], tmp_path), ours(xen_tree, [f])
        if want != got:
            differ[f] = (sorted(want - got), sorted(got - want))
    assert differ == {}


def test_directories_and_several_files_at_once(xen_tree: Path, tmp_path: Path) -> None:
    for d in DIRECTORIES:
        assert ours(xen_tree, [d]) == get_maintainer_pl(xen_tree, ["-f", d], tmp_path), d
    # Several files: THE REST stays out unless one file is THE REST's alone.
    groups = [["tools/libs/light/libxl_dom.c", "xen/arch/x86/tboot.c"],
              ["tools/libs/light/libxl_dom.c", "xen/include/public/xen.h"],
              ["xen/common/sched/rt.c", "docs/misc/xen-command-line.pandoc", "xen/arch/arm/vgic.c"]]
    for g in groups:
        want = get_maintainer_pl(xen_tree, ["-f", *g], tmp_path)
        assert ours(xen_tree, g) == want, g


def test_public_header_is_the_rest_and_libxl_only_its_section(xen_tree: Path) -> None:
    header = recipients_for(xen_tree, ["xen/include/public/xen.h"])
    assert header.to == ("xen-devel@lists.xenproject.org",)
    assert set(header.cc) == THE_REST
    libxl = recipients_for(xen_tree, ["tools/libs/light/libxl_dom.c"])
    # LIBS (tools/libs/) and TOOLSTACK (tools/): no THE REST.
    assert set(libxl.cc) == {"Wei Liu <wl@xen.org>", "Anthony PERARD <anthony.perard@citrix.com>",
                             "Juergen Gross <jgross@suse.com>"}


def _commit(clone: Path, rel: str, old: str, new: str, subject: str) -> None:
    path = clone / rel
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8", errors="surrogateescape")
    git(clone, "commit", "-q", "-a", "-m", subject)


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "Ada Tester", "GIT_AUTHOR_EMAIL": "ada@example.org",
           "GIT_COMMITTER_NAME": "Ada Tester", "GIT_COMMITTER_EMAIL": "ada@example.org",
           "GIT_AUTHOR_DATE": "2026-11-27T12:00:00Z", "GIT_COMMITTER_DATE": "2026-11-27T12:00:00Z",
           "PATH": "/usr/bin:/bin", "HOME": str(repo.parent), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True,
                          check=True).stdout


XSM_KEYWORDS = "K:\txsm_.*\nK:\t\\b(xsm|XSM)\\b\n"  # what xen.git master has under XSM/FLASK


def _realistic_patches(clone: Path) -> list[Path]:
    # Keyword and N: lines as later Xen trees use them, so patch mode's K:/N: handling is exercised.
    maint = clone / "MAINTAINERS"
    text = maint.read_text(encoding="utf-8")
    text = text.replace("F:\tdocs/misc/xsm-flask.txt\n", "F:\tdocs/misc/xsm-flask.txt\n" + XSM_KEYWORDS)
    text = text.replace("F:\txen/include/xen/argo.h\n", "F:\txen/include/xen/argo.h\nN:\targo\n")
    maint.write_text(text, encoding="utf-8")
    git(clone, "commit", "-q", "-a", "-m", "MAINTAINERS: keywords for the test")
    _commit(clone, "xen/include/public/xen.h", "#define SIF_PM_MASK",
            "#define SIF_HVM_GHCB      (1<<5)  /* Domain is SEV-ES/SNP */\n#define SIF_PM_MASK",
            "xen/public: introduce SIF_HVM_GHCB")
    _commit(clone, "tools/libs/light/libxl_dom.c", "#include \"libxl_internal.h\"",
            "#include \"libxl_internal.h\"\n/* GHCB plumbing */", "tools/libxl: plumb GHCB")
    _commit(clone, "xen/include/public/xsm/flask_op.h", "#define XEN_FLASK_INTERFACE_VERSION",
            "/* xsm: a comment */\n#define XEN_FLASK_INTERFACE_VERSION", "xsm: comment the flask op")
    _commit(clone, "tools/firmware/hvmloader/hvmloader.c", "#include \"util.h\"",
            "#include \"util.h\"\n/* xsm_ prefix in a hunk */", "hvmloader: a comment")
    _commit(clone, "docs/designs/argo.pandoc", "Argo", "Argo (inter-domain)", "docs: argo")
    out = clone.parent / "out"
    git(clone, "format-patch", "-q", "-o", str(out), "HEAD~5..HEAD")
    return sorted(out.glob("*.patch"))


def test_patches_match_get_maintainer_pl(xen_clone: Path, tmp_path: Path) -> None:
    patches = _realistic_patches(xen_clone)
    assert len(patches) == 5
    results = {}
    for p in patches:
        want = get_maintainer_pl(xen_clone, [str(p)], tmp_path)
        assert ours(xen_clone, [str(p)]) == want, p.name
        results[p.name[5:20]] = want
    assert ours(xen_clone, [str(p) for p in patches]) == get_maintainer_pl(
        xen_clone, [str(p) for p in patches], tmp_path)
    # The public header patch: all of THE REST; the flask one adds XSM through K:.
    assert THE_REST < results["xen-public-intr"]
    assert '"Daniel P. Smith" <dpsmith@apertussolutions.com>' in results["xsm-comment-the"]
    assert THE_REST < results["xsm-comment-the"]
    # In -f mode K: looks at the whole file: xen.h mentions XSM, so XSM/FLASK joins.
    assert '"Daniel P. Smith" <dpsmith@apertussolutions.com>' in ours(
        xen_clone, ["xen/include/public/xen.h"])
    # libxl: only its sections (LIBS and TOOLSTACK), no THE REST maintainer who is not in them.
    assert "George Dunlap <george.dunlap@citrix.com>" not in results["tools-libxl-plu"]
    # hvmloader: X86 plus the XSM K: match on the "+" line.
    assert '"Daniel P. Smith" <dpsmith@apertussolutions.com>' in results["hvmloader-a-com"]


def test_cli_json_and_text(xen_tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["maintainers", "--tree", str(xen_tree), "--format", "json",
                 "tools/libs/light/libxl_dom.c"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"schema": "xenpatch-maintainers/1", "to": ["xen-devel@lists.xenproject.org"],
                   "cc": ["Wei Liu <wl@xen.org>", "Anthony PERARD <anthony.perard@citrix.com>",
                          "Juergen Gross <jgross@suse.com>"]}
    assert main(["maintainers", "--tree", str(xen_tree), "xen/drivers/passthrough/pci.c"]) == 0
    out = capsys.readouterr().out
    assert "To: xen-devel@lists.xenproject.org" in out
    assert 'Cc: "Roger Pau Monné" <roger.pau@citrix.com>' in out


@pytest.mark.parametrize("arg, message", [
    ("no/such/file.c", "no/such/file.c: no such file in the tree"),
    ("/etc/hostname", "/etc/hostname: not a patch"),
])
def test_cli_bad_input(xen_tree: Path, capsys: pytest.CaptureFixture[str], arg: str,
                       message: str) -> None:
    assert main(["maintainers", "--tree", str(xen_tree), arg]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_unit_patterns() -> None:
    assert mt.glob_to_regex("docs/misc/kconfig{,-language}.txt", lambda _: False) == \
        "docs/misc/kconfig(|-language)\\.txt"
    assert mt.glob_to_regex("xen/common/{kexec,kimage}.c", lambda _: False) == \
        "xen/common/(kexec|kimage)\\.c"
    assert mt.glob_to_regex("tools/golang", lambda p: p == "tools/golang") == "tools/golang/"
    assert mt.file_match_pattern("xen/arch/x86/mm/p2m.c", "xen/arch/x86/")
    assert not mt.file_match_pattern("xen/drivers/net/sub/x.c", "xen/drivers/net/.*")
    assert mt.file_match_pattern("README", ".*") and not mt.file_match_pattern("a/b", ".*")
    assert mt.parse_email("Daniel P. Smith <dps@x.org>") == ('"Daniel P. Smith"', "dps@x.org")


def test_unit_not_a_xen_maintainers() -> None:
    with pytest.raises(InputError, match="xen-maintainers"):
        mt.parse_maintainers("THE REST\nM:\tA <a@b.c>\nF:\t*\n", lambda _: False)


def test_master_of_xen_git_matches(xen_git: Path, tmp_path: Path) -> None:
    """The newest MAINTAINERS and get_maintainer.pl of xen.git (real K: keywords under
    XSM/FLASK, more sections); local only, CI has no xen.git."""
    tree = tmp_path / "xen"
    subprocess.run(["git", "clone", "-q", "--shared", str(xen_git), str(tree)], check=True)
    listed = subprocess.run(["git", "ls-files"], cwd=tree, capture_output=True, text=True,
                            check=True).stdout.splitlines()
    files = listed[::25] + ["xen/include/public/xen.h", "tools/libs/light/libxl_dom.c",
                            "xen/include/public/xsm/flask_op.h", "xen/xsm/flask/hooks.c"]
    differ = {}
    for f in files:
        want, got = get_maintainer_pl(tree, ["-f", f], tmp_path), ours(tree, [f])
        if want != got:
            differ[f] = (sorted(want - got), sorted(got - want))
    assert differ == {}
    assert len(files) >= 100
    # And the same realistic patches as on 4.17, through master's script.
    patches = _realistic_patches(tree)
    for p in patches:
        assert ours(tree, [str(p)]) == get_maintainer_pl(tree, [str(p)], tmp_path), p.name
    # 7114bbfc84: the reviewers-only PPC64 section keeps THE REST on Cc.
    assert THE_REST & ours(tree, ["xen/arch/ppc/setup.c"])


def test_script_rules_of_4_17(xen_tree: Path) -> None:
    text = (xen_tree / "scripts/get_maintainer.pl").read_text(encoding="latin-1")
    assert mt.ScriptRules.of_script(text) == mt.ScriptRules(False, False)
    assert mt.ScriptRules.of_script(None) == mt.ScriptRules(True, True)
