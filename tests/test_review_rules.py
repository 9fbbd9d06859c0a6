"""The review rules as pure functions: hunks, tags, subjects, style, vendor terms, includes, bit facts."""

from __future__ import annotations

from xenpatch.review.hunks import parse_diff
from xenpatch.review.rules.abi import bit_ranges, change_rule, change_severity
from xenpatch.review.rules.style import check_style, file_style
from xenpatch.review.rules.subject import check_subject
from xenpatch.review.rules.tags import check_tags
from xenpatch.review.rules.text import check_includes, check_vendor_terms, include_problem

DIFF = """diff --git a/xen/include/public/xen.h b/xen/include/public/xen.h
index 7f15204c38..9b84df573b 100644
--- a/xen/include/public/xen.h
+++ b/xen/include/public/xen.h
@@ -890,6 +890,7 @@ typedef struct start_info start_info_t;
 #define SIF_MOD_START_PFN (1<<3)  /* Is mod_start a PFN? */
 #define SIF_VIRT_P2M_4TOOLS (1<<4) /* Do Xen tools understand a virt. mapped */
                                     /* P->M making the 3 level tree obsolete? */
+#define SIF_HVM_GHCB      (1<<5)   /* Domain is SEV-ES/SNP guest that requires */
+                                   /* use of GHCB. */
 #define SIF_PM_MASK       (0xFF<<8) /* reserve 1 byte for xen-pm options */
 #define SIF_PM_MASK_SHIFT 8
-#define SIF_GONE 1
--\x20\n2.39.5
"""


def test_hunk_lines_are_numbered_as_the_patch_leaves_the_file() -> None:
    (d,) = parse_diff(DIFF)
    assert d.path == "xen/include/public/xen.h" and not d.new_file
    assert [(ln.new, ln.text[:20]) for ln in d.added()] == [
        (893, "#define SIF_HVM_GHCB"), (894, "                    ")]
    assert d.hunks[0].lines[-1].kind == "-" and d.hunks[0].lines[-1].old == 895


def test_vendor_terms_whole_words_one_finding_per_run() -> None:
    (d,) = parse_diff(DIFF)
    (f,) = check_vendor_terms(3, d)
    assert (f.rule, f.severity, f.patch, f.line) == ("vendor-term", "warning", 3, 893)
    assert "GHCB, SEV-ES, SNP" in f.message
    (arch,) = parse_diff(DIFF.replace("public/xen.h", "public/arch-x86/xen.h"))
    assert check_vendor_terms(1, arch) == []
    (amd64,) = parse_diff(DIFF.replace("SEV-ES/SNP guest", "AMD64 guest").replace("GHCB", "x"))
    assert check_vendor_terms(1, amd64) == []


def test_includes() -> None:
    assert include_problem("xen/include/public/xen.h", "/etc/passwd") == "an absolute path"
    assert include_problem("xen/include/public/xen.h", "../../../../etc/passwd") == \
        "a path that leaves the tree"
    assert include_problem("xen/include/public/hvm/x.h", "../xen.h") is None
    assert include_problem("xen/include/public/xen.h", "../xlat.h") == \
        "a path that leaves the public headers"
    (d,) = parse_diff(DIFF.replace("+                                   /* use of GHCB. */",
                                   '+#include "/etc/passwd"'))
    (f,) = check_includes(1, d)
    assert (f.rule, f.severity, f.line) == ("unsafe-include", "error", 894)


def test_tags() -> None:
    me = "Teddy Astie <teddy.astie@vates.tech>"
    assert check_tags(1, me, [("Signed-off-by", me), ("Reviewed-by", "Jan <j@suse.com>")]) == []
    # the same person signing with another address (name matches)
    assert check_tags(1, me, [("Signed-off-by", "Teddy Astie <teddy@cloud.example>")]) == []
    assert [f.rule for f in check_tags(1, me, [])] == ["signed-off-by"]
    found = check_tags(1, me, [("Acked-by", "Jan <j@suse.com>"), ("Signed-off-by", me),
                               ("Reported-by", "X <x@y.org>"),
                               ("Fixes", '67d01cdb5518 ("x86: infrastructure")'),
                               ("Fixes", "67d01cdb55 (x86)"),
                               ("Reviewed-by", "patchew <no-reply@patchew.org>")])
    assert sorted((f.severity, f.message.split(":")[0]) for f in found) == [
        ("error", "Reviewed-by"), ("warning", "Acked-by"), ("warning", "Fixes"),
        ("warning", "Reported-by")]
    # tags above Origin: are the original patch's (docs/process/sending-patches.pandoc)
    assert check_tags(1, me, [("Reviewed-by", "A <a@b.org>"), ("Origin", "git://x 1234"),
                              ("Signed-off-by", me)]) == []


def test_subject() -> None:
    for ok in ("x86/hvm: fix a thing", "tools/libxl: plumb it", "{xen,tools}/public: add X",
               "xen/arm, x86: share it", "CI: bump", "MAINTAINERS: update my address"):
        assert check_subject(1, ok) == [], ok
    assert [f.message[:5] for f in check_subject(1, "fix the build")] == ['"fix ']
    assert "columns" in check_subject(1, "x86: " + "word " * 20)[0].message


def test_file_style() -> None:
    assert file_style("xen/common/x.c", "int a;\n    b;\n", []) == "hypervisor"
    assert file_style("xen/lib/rb.c", "\tint a;\n\tb;\n    c;\n", []) == "linux"
    assert file_style("xen/a.c", ' * c-file-style: "linux"\n', []) == "linux"
    assert file_style("tools/libs/light/x.c", "    a;\n", []) == "tools"
    assert file_style("docs/x.pandoc", "", []) is None
    diff = ("diff --git a/tools/libs/light/x.c b/tools/libs/light/x.c\n--- a/tools/libs/light/x.c\n"
            "+++ b/tools/libs/light/x.c\n@@ -1,1 +1,4 @@\n int a;\n+    if (x) {\n"
            "+\treturn;\n+ out:\n")
    (d,) = parse_diff(diff)
    assert [f.message.split(";")[0] for f in check_style(1, d, "int a;\n    b;\n")] == \
        ["indented with a tab"]


def test_abi_mapping_and_bits() -> None:
    from xenpatch.abi.diff import Change

    removed = Change("macro-removed", "breaking", "SIF_X", ("x86_64",), "xen.h", 1, 1, None)
    assert (change_rule(removed), change_severity(removed)) == ("abi-removed", "error")
    tools = Change("type-size-changed", "breaking", "struct xen_domctl", ("x86_64",), "domctl.h",
                   1, 8, 16)
    assert (change_rule(tools), change_severity(tools)) == ("abi-layout-change", "warning")
    added = Change("macro-added", "compatible", "SIF_X", ("x86_64",), "xen.h", 1, None, 32)
    assert change_rule(added) is None
    assert bit_ranges(0b1011_1111) == "0-5, 7"


def test_guest_view_only_where_the_interface_version_matters() -> None:
    from xenpatch.review.engine import _profiles
    from xenpatch.review.locate import Locator

    path = "xen/include/public/xen.h"
    text = ("#define A 1\n#if __XEN_INTERFACE_VERSION__ < 0x00040400\n#define B 2\n#else\n"
            "#define B 3\n#endif\n#define C 4\n").split("\n")
    def view(line: int) -> tuple[str, ...]:
        return _profiles(Locator({path: {line: (1, line)}}, {path: 1}, {path: tuple(text)}), [path])
    assert view(1) == ("tools",) and view(7) == ("tools",)
    assert view(3) == ("tools", "guest") and view(5) == ("tools", "guest")
