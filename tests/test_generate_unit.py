"""Unit tests of generate's pure parts: change spec, flag placement, anchors, templates, dates."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest

from xenpatch.abi.headercheck import header_sets
from xenpatch.abi.model import AbiModel, ArchModel, Family, Macro, Source
from xenpatch.errors import ConfigError, InputError
from xenpatch.generate.command import git_date
from xenpatch.generate.compose import (
    apply_changelog,
    apply_ocaml_cdf,
    commit_message,
    compose,
    define_lines,
)
from xenpatch.generate.edit import Anchor, AnchorError, locate
from xenpatch.generate.flag import (
    BitUnavailable,
    NameExists,
    check_name_free,
    choose_bit,
    find_family,
    plan_flag,
)
from xenpatch.generate.golang import carry_delta
from xenpatch.generate.render import make_env, pad, reflow
from xenpatch.generate.selfcheck import judge_columns, judge_meaning, normalize
from xenpatch.generate.spec import load_change, parse_change

ROOT = Path(__file__).resolve().parent.parent
CHANGES = tomllib.loads((ROOT / "xenpatch" / "defaults" / "changes" / "sif-hvm-ghcb.toml")
                        .read_text())["changes"]
CDF = tomllib.loads((ROOT / "examples" / "cdf-flag.toml").read_text())["changes"]

# The SIF_ block of xen.h in Xen 4.17.5 (lines 869-877), with the model the
# ABI engine gives for it.
XEN_H = "\n" * 868 + """\
/* These flags are passed in the 'flags' field of start_info_t. */
#define SIF_PRIVILEGED    (1<<0)  /* Is the domain privileged? */
#define SIF_INITDOMAIN    (1<<1)  /* Is this the initial control domain? */
#define SIF_MULTIBOOT_MOD (1<<2)  /* Is mod_start a multiboot module? */
#define SIF_MOD_START_PFN (1<<3)  /* Is mod_start a PFN? */
#define SIF_VIRT_P2M_4TOOLS (1<<4) /* Do Xen tools understand a virt. mapped */
                                   /* P->M making the 3 level tree obsolete? */
#define SIF_PM_MASK       (0xFF<<8) /* reserve 1 byte for xen-pm options */

"""
SIF = [("SIF_PRIVILEGED", 1, "(1<<0)", 870), ("SIF_INITDOMAIN", 2, "(1<<1)", 871),
       ("SIF_MULTIBOOT_MOD", 4, "(1<<2)", 872), ("SIF_MOD_START_PFN", 8, "(1<<3)", 873),
       ("SIF_VIRT_P2M_4TOOLS", 16, "(1<<4)", 874), ("SIF_PM_MASK", 0xFF00, "(0xFF<<8)", 876)]


def sif_model() -> AbiModel:
    macros = tuple(sorted((Macro(n, v, e, "xen.h", ln) for n, v, e, ln in SIF), key=lambda m: m.name))
    fam = Family("SIF_", "bits", tuple(n for n, *_ in SIF), used_mask=31, reserved_mask=0xFF00,
                 masks=("SIF_PM_MASK",))
    return AbiModel(Source(), (ArchModel("x86_64", ("xen.h",), macros=macros, families=(fam,)),
                               ArchModel("arm64", ("xen.h",), macros=macros, families=(fam,))))


def spec_with(**changes):
    raw = copy.deepcopy(CHANGES["sif-hvm-ghcb"])
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return parse_change("sif-hvm-ghcb", raw)


# --- the change description --------------------------------------------------

def test_shipped_changes_parse():
    spec = load_change(CHANGES, "sif-hvm-ghcb")
    assert (spec.family, spec.name, spec.bit) == ("SIF_", "SIF_HVM_GHCB", None)
    assert [p.parts for p in spec.patches] == [("define", "docs"), ("xenguest",), ("libxl",)]
    cdf = load_change(CDF, "cdf-trap-unmapped")
    assert (cdf.family, cdf.idiom) == ("XEN_DOMCTL_CDF_", "bit-number")
    assert [p.parts for p in cdf.patches] == [("define",), ("ocaml-cdf",)]


@pytest.mark.parametrize("change, key", [
    ({"name": None}, "changes.sif-hvm-ghcb.name is missing"),
    ({"name": "XEN_FOO"}, "changes.sif-hvm-ghcb.name = 'XEN_FOO': must start with the family"),
    ({"name": "SIF FOO"}, "changes.sif-hvm-ghcb.name = 'SIF FOO': must be a C identifier"),
    ({"bit": 99}, "changes.sif-hvm-ghcb.bit = 99"),
    ({"bit": "five"}, "changes.sif-hvm-ghcb.bit = 'five'"),
    ({"kind": "struct"}, "changes.sif-hvm-ghcb.kind = 'struct'"),
    ({"idiom": "weird"}, "changes.sif-hvm-ghcb.idiom = 'weird'"),
    ({"colour": "red"}, "unknown key changes.sif-hvm-ghcb.colour"),
    ({"cover_subject": "x" * 81}, "changes.sif-hvm-ghcb.cover_subject: a subject is one line"),
    ({"docs": None}, "changes.sif-hvm-ghcb.docs is missing"),
    ({"toolstack": None}, "changes.sif-hvm-ghcb.toolstack is missing"),
    ({"patches": []}, "changes.sif-hvm-ghcb.patches must be a non-empty list"),
    ({"patches": [{"subject": "a", "body": "b", "parts": ["docs"]}]},
     "changes.sif-hvm-ghcb.patches: no patch carries the 'define' part"),
    ({"patches": [{"subject": "a", "body": "b", "parts": ["define", "wings"]}]},
     "changes.sif-hvm-ghcb.patches[1].parts: unknown part 'wings'"),
    ({"patches": [{"subject": "a", "body": "b", "parts": ["define", "define"]}]},
     "part 'define' is listed twice"),
    ({"toolstack": {"option": "ghcb"}}, "changes.sif-hvm-ghcb.toolstack.field is missing"),
])
def test_bad_change_names_the_key(change, key):
    with pytest.raises(ConfigError) as e:
        spec_with(**change)
    assert key in str(e.value)


def cdf_with(**changes):
    raw = copy.deepcopy(CDF["cdf-trap-unmapped"])
    raw.update(changes)
    return parse_change("cdf-trap-unmapped", raw)


@pytest.mark.parametrize("change, key", [
    ({"patches": [{"subject": "a", "body": "b", "parts": ["define", "ocaml"]}]},
     "changes.cdf-trap-unmapped.patches[1].parts: unknown part 'ocaml' (known: define, docs, "
     "xenguest, libxl, ocaml-cdf)"),
    ({"family": "XEN_DOMCTL_", "name": "XEN_DOMCTL_CDF_foo"},
     "changes.cdf-trap-unmapped.patches: part 'ocaml-cdf' needs family 'XEN_DOMCTL_CDF_', "
     "not 'XEN_DOMCTL_'"),
    ({"name": "XEN_DOMCTL_CDF_Foo"},
     "changes.cdf-trap-unmapped.name = 'XEN_DOMCTL_CDF_Foo': part 'ocaml-cdf' needs a lower-case "
     "name"),
])
def test_bad_ocaml_cdf_part_names_the_key(change, key):
    with pytest.raises(ConfigError) as e:
        cdf_with(**change)
    assert key in str(e.value)


# xenctrl.ml of Xen 4.17.5 around the variant (tabs), and the .mli of master
# (ocamlformat, two spaces).
XENCTRL_ML = """type arch_domainconfig =
\t| ARM of xen_arm_arch_domainconfig
\t| X86 of xen_x86_arch_domainconfig

type domain_create_flag =
\t| CDF_HVM
\t| CDF_HAP

type domain_create_iommu_opts =
\t| IOMMU_NO_SHAREPT
"""
XENCTRL_MLI = XENCTRL_ML.replace("\t", "  ")


def _cdf_plan(bit: int):
    return type("Plan", (), {"bit": bit})()


@pytest.mark.parametrize("text", [XENCTRL_ML, XENCTRL_MLI])
def test_ocaml_cdf_constructor_goes_last_written_like_its_neighbour(text):
    spec = load_change(CDF, "cdf-trap-unmapped")
    out = apply_ocaml_cdf(text, make_env(), spec, _cdf_plan(2), "xenctrl.ml")
    indent = text.split("| CDF_HAP")[0].rsplit("\n", 1)[1]
    assert out == text.replace(f"{indent}| CDF_HAP\n",
                               f"{indent}| CDF_HAP\n{indent}| CDF_TRAP_UNMAPPED_ACCESSES\n")


def test_ocaml_cdf_errors_name_file_and_anchor_or_order():
    spec = load_change(CDF, "cdf-trap-unmapped")
    with pytest.raises(AnchorError, match=r"^xenctrl.ml:5: domain_create_flag lists 2 flags \(bits "
                       r"0-1\) but XEN_DOMCTL_CDF_trap_unmapped_accesses takes bit 8: .*abi-check"):
        apply_ocaml_cdf(XENCTRL_ML, make_env(), spec, _cdf_plan(8), "xenctrl.ml")
    renamed = XENCTRL_ML.replace("type domain_create_flag =", "type create_flag =")
    with pytest.raises(AnchorError, match=r"^xenctrl.mli: anchor not found: the last constructor "
                       r"of 'type domain_create_flag ='"):
        apply_ocaml_cdf(renamed, make_env(), spec, _cdf_plan(2), "xenctrl.mli")


# --- Go bindings: this change's hunks onto stale checked-in files --------------

def test_carry_delta_applies_only_the_changes_hunks():
    old = "".join(f"line {i}\n" for i in range(20))
    new = old.replace("line 10\n", "line 10\nadded\n")
    # Checked in: stale in an unrelated place (line 2 differs).
    stale = old.replace("line 2\n", "line two\n")
    assert carry_delta(stale, old, new) == stale.replace("line 10\n", "line 10\nadded\n")
    assert carry_delta(old, old, new) == new
    # The hunk's own neighbourhood differs: not placed.
    assert carry_delta(old.replace("line 10\n", "line ten\n"), old, new) is None
    assert carry_delta(old.replace("line 11\n", "line eleven\n"), old, new) is None


def test_unknown_change():
    with pytest.raises(ConfigError, match=r"changes.nope: no such change .*sif-hvm-ghcb"):
        load_change(CHANGES, "nope")


# --- the flag: bit, name, placement ------------------------------------------

def test_auto_bit_is_lowest_free_outside_reserved_mask():
    fam = find_family(sif_model(), "SIF_")
    assert (fam.used, fam.reserved) == (31, 0xFF00)
    assert choose_bit(fam, None) == 5
    assert choose_bit(fam, 6) == 6
    assert choose_bit(fam, 16) == 16


def test_explicit_bit_taken_or_reserved():
    fam = find_family(sif_model(), "SIF_")
    with pytest.raises(BitUnavailable, match=r"xen.h:873: bit 3 is taken by SIF_MOD_START_PFN"):
        choose_bit(fam, 3)
    with pytest.raises(BitUnavailable, match=r"xen.h:876: bit 8 lies in SIF_PM_MASK \(bits 8-15\)"):
        choose_bit(fam, 8)


def test_existing_name_is_named_with_file_and_line():
    check_name_free(sif_model(), "SIF_HVM_GHCB")
    with pytest.raises(NameExists, match=r"^xen/include/public/xen.h:874: SIF_VIRT_P2M_4TOOLS is already"):
        check_name_free(sif_model(), "SIF_VIRT_P2M_4TOOLS")


def test_unknown_family():
    with pytest.raises(InputError, match="no macro family 'XENFOO_'"):
        find_family(sif_model(), "XENFOO_")


def test_define_goes_before_the_reserved_mask_aligned_and_wrapped():
    spec = load_change(CHANGES, "sif-hvm-ghcb")
    fam = find_family(sif_model(), "SIF_")
    plan = plan_flag(spec, fam, 5, XEN_H)
    assert plan.insert_index == 875  # after the continuation line of SIF_VIRT_P2M_4TOOLS
    assert (plan.value_column, plan.comment_column, plan.comment_style) == (26, 34, "trailing")
    text = define_lines(make_env(), spec, plan)
    assert text == ("#define SIF_HVM_GHCB      (1<<5)  /* The flag is a hint from the domain */\n"
                    "                                  /* builder that the guest is an SEV-ES/SNP */\n"
                    "                                  /* guest and may use the GHCB MSR protocol */\n"
                    "                                  /* before it has an IDT; the guest must */\n"
                    "                                  /* verify this (e.g. via the SEV_STATUS */\n"
                    "                                  /* MSR) before relying on it. */\n")
    # CODING_STYLE: less than 80 columns.
    assert max(len(line) for line in text.splitlines()) == 79


def test_header_model_mismatch_is_an_input_error():
    spec = load_change(CHANGES, "sif-hvm-ghcb")
    fam = find_family(sif_model(), "SIF_")
    with pytest.raises(InputError, match=r"xen.h:870: expected '#define SIF_PRIVILEGED'"):
        plan_flag(spec, fam, 5, XEN_H.replace("SIF_PRIVILEGED ", "SIF_OTHER     "))


def test_compose_only_touches_what_each_patch_names():
    spec = load_change(CHANGES, "sif-hvm-ghcb")
    fam = find_family(sif_model(), "SIF_")
    plan = plan_flag(spec, fam, 5, XEN_H)
    docs = "# Title #\n\ntext\n\n## AP startup ##\n\nmore\n"
    files = {"xen/include/public/xen.h": XEN_H, "docs/misc/pvh.pandoc": docs}
    one = parse_change("x", {**CHANGES["sif-hvm-ghcb"], "patches": [
        {"subject": "s", "body": "b", "parts": ["define", "docs"]}]})
    (patch,), notes = compose(one, plan, files.__getitem__, make_env(), identity="A <a@b>",
                              signoff=False)
    assert notes == ()
    assert [p for p, _ in patch.files] == ["docs/misc/pvh.pandoc", "xen/include/public/xen.h"]
    new_docs = dict(patch.files)["docs/misc/pvh.pandoc"]
    assert new_docs.index("## SEV-ES/SNP guests ##") < new_docs.index("## AP startup ##")
    assert "Signed-off-by" not in patch.message
    (signed,), _ = compose(one, plan, files.__getitem__, make_env(), identity="A <a@b>",
                           signoff=True)
    assert signed.message.endswith("\n\nSigned-off-by: A <a@b>\n")


def test_missing_docs_heading_names_file_and_anchor():
    spec = load_change(CHANGES, "sif-hvm-ghcb")
    plan = plan_flag(spec, find_family(sif_model(), "SIF_"), 5, XEN_H)
    files = {"xen/include/public/xen.h": XEN_H, "docs/misc/pvh.pandoc": "# Title #\n\nno such heading\n"}
    message = r"^docs/misc/pvh.pandoc: anchor not found: the heading 'AP startup'"
    with pytest.raises(AnchorError, match=message):
        compose(spec, plan, files.__getitem__, make_env(), identity="A <a@b>", signoff=True)


# --- anchors -------------------------------------------------------------------

def test_anchor_chain_stop_and_last():
    text = "int f(void)\n{\n    a = 1;\n}\nint g(void)\n{\n    b = 1;\n    b = 2;\n}\n"
    a = Anchor("b in g()", (r"^int g\(", r"^\s+b = "), where="before")
    assert locate(text, a, "f.c").index == 6
    last = Anchor("last b", (r"^\s+b = ",), last=True)
    assert locate(text, last, "f.c").index == 8
    bounded = Anchor("b in f()", (r"^int f\(", r"^\s+b = "), stop=r"^\}")
    with pytest.raises(AnchorError, match=r"^f.c: anchor not found: b in f\(\)"):
        locate(text, bounded, "f.c")


# --- rendering helpers, headers, dates ----------------------------------------

def test_pad_and_reflow():
    assert pad("#define X", 12) == "#define X   "
    assert pad("#define LONG_NAME", 12) == "#define LONG_NAME "
    body = "one two three four five six seven\neight nine\n\n    code stays\n    as is"
    assert reflow(body, 20) == "one two three four\nfive six seven eight\nnine\n\n    code stays\n    as is"


def test_user_templates_override_shipped(tmp_path):
    (tmp_path / "commit-message.txt.j2").write_text("custom {{ subject }}\n")
    env = make_env(tmp_path)
    assert env.get_template("commit-message.txt.j2").render(subject="s") == "custom s\n"
    assert env.get_template("define.h.j2")  # the shipped ones are still found
    with pytest.raises(ConfigError, match="series.templates"):
        make_env(tmp_path / "missing")


@pytest.mark.parametrize("header, sets", [
    ("xen.h", ("headers.chk", "headers++.chk")),
    ("domctl.h", ("headers++.chk",)),
    ("hvm/save.h", ("headers++.chk",)),
    ("io/9pfs.h", ("headers99.chk", "headers++.chk")),
    ("arch-x86/xen.h", ()),
    ("dom0_ops.h", ()),
    ("arch-x86/hvm/start_info.h", ()),
])
def test_header_sets_follow_xens_makefile(header, sets):
    assert header_sets(header) == sets


def test_git_date():
    assert git_date("Thu, 01 Jan 2026 00:00:00 +0100", {}) == "@1767222000 +0100"
    assert git_date("2026-01-01T00:00:00", {}) == "@1767225600 +0000"
    assert git_date("", {"SOURCE_DATE_EPOCH": "1767225600"}) == "@1767225600 +0000"
    with pytest.raises(ConfigError, match="series.date = 'soon'"):
        git_date("soon", {})
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH='x'"):
        git_date("", {"SOURCE_DATE_EPOCH": "x"})


# --- versions, meaning, columns, CHANGELOG.md (issue 12) -------------------------

def test_version_2_applies_the_v2_table():
    v1 = load_change(CHANGES, "sif-hvm-ghcb")
    v2 = load_change(CHANGES, "sif-hvm-ghcb", 2)
    assert (v1.version, v1.changes, v1.toolstack.only_type) == (1, (), None)
    assert v2.version == 2 and len(v2.changes) == 4
    assert v2.toolstack.only_type == "pvh" and v2.toolstack.conflicts == ("pvh.pvshim",)
    assert v2.toolstack.option == v1.toolstack.option  # the other keys are kept
    assert [len(dict(p.changelog).get(2, ())) for p in v2.patches] == [2, 0, 1]
    assert "AMD SEV-ES/SNP" in v2.meaning and "AMD" not in v1.meaning
    # {meaning} is filled in everywhere it is used, with the version's sentence.
    assert v2.meaning in v2.docs.text and v2.meaning in v2.patches[0].body
    assert v1.comment == v1.meaning
    assert v2.credits == v1.credits and "Teddy Astie" in v1.credits[0]


@pytest.mark.parametrize("change, version, key", [
    ({}, 3, "changes.sif-hvm-ghcb.v3 is missing"),
    ({"v2": {"cover_body": "x"}}, 2, "changes.sif-hvm-ghcb.v2.changes is missing"),
    ({"v2": {"changes": ["a"], "colour": "red"}}, 2, "unknown key changes.sif-hvm-ghcb.v2.colour"),
    ({"v2": {"changes": ["a"], "patches": [{"changes": []}]}}, 2,
     "changes.sif-hvm-ghcb.v2.patches must list one table per patch (3)"),
    ({"v1": {"changes": ["a"]}}, 1, "changes.sif-hvm-ghcb.v1: versions start at v2"),
    ({"credits": ["Signed-off-by: Teddy Astie <teddy.astie@vates.tech>"]}, 1,
     "a Signed-off-by is given only by its author"),
    ({"meaning": None}, 1, "{meaning} is used but no meaning is given"),
    ({"requires": {"pattern": "(", "what": "w", "absent": "a"}}, 1,
     "changes.sif-hvm-ghcb.requires.pattern = '('"),
])
def test_bad_versions_and_credits_name_the_key(change, version, key):
    raw = copy.deepcopy(CHANGES["sif-hvm-ghcb"])
    for k, v in change.items():
        if v is None:
            raw.pop(k, None)
        else:
            raw[k] = v
    with pytest.raises(ConfigError) as e:
        parse_change("sif-hvm-ghcb", raw, version)
    assert key in str(e.value)


@pytest.mark.parametrize("toolstack, key", [
    ({"arch": "arm"}, "toolstack.arch = 'arm': only \"x86\""),
    ({"only_type": "kvm"}, "toolstack.only_type = 'kvm'"),
    ({"conflicts": ["pvshim"]}, "toolstack.conflicts: 'pvshim' is not TYPE.MEMBER"),
])
def test_bad_toolstack_names_the_key(toolstack, key):
    raw = copy.deepcopy(CHANGES["sif-hvm-ghcb"])
    raw["toolstack"].update(toolstack)
    with pytest.raises(ConfigError, match=re.escape(key)):
        parse_change("sif-hvm-ghcb", raw)


def _patch_file(message: str, path: str, added: list[str]) -> str:
    body = "".join(f"+{line}\n" for line in added)
    return (f"From 0 Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\nSubject: [PATCH 1/1] s\n\n"
            f"{message}\n---\n {path} | 1 +\n 1 file changed, 1 insertion(+)\n\n"
            f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1,2 @@\n"
            f" x\n{body}-- \nxenpatch\n")


def test_columns_self_check_finds_the_line_over_its_limit():
    ok = _patch_file("m" * 75, "xen/include/public/xen.h", ["#" * 79])
    assert judge_columns([("0001-x.patch", ok)]).ok
    long_code = _patch_file("message", "xen/include/public/xen.h", ["#define X 1", "#" * 80])
    result = judge_columns([("0001-x.patch", long_code)])
    assert not result.ok
    assert result.details == ("0001-x.patch:16: xen/include/public/xen.h: added line of 80 "
                              "columns (at most 79): ########################################...",)
    tab = _patch_file("message", "tools/libs/light/libxl_x86.c", ["\t" * 9 + "x" * 8])
    assert "added line of 80 columns" in judge_columns([("0001-x.patch", tab)]).details[0]
    long_message = _patch_file("m" * 76, "xen/include/public/xen.h", ["x"])
    assert "0001-x.patch:5: message line of 76 columns" in \
        judge_columns([("0001-x.patch", long_message)]).details[0]
    go = _patch_file("message", "tools/golang/xenlight/helpers.gen.go", ["x" * 120])
    assert judge_columns([("0001-x.patch", go)]).ok  # gengotypes.py's output is Xen's own


def test_meaning_self_check_wants_the_sentence_unaltered_in_substance():
    spec = load_change(CHANGES, "sif-hvm-ghcb")
    one = parse_change("x", {**CHANGES["sif-hvm-ghcb"], "patches": [
        {"subject": "s", "body": "Why.\n\n{meaning}", "parts": ["define", "docs"]}]})
    wrapped = ["#define SIF_HVM_GHCB (1<<5) /* " + spec.meaning[:60] + " */",
               "                           /* " + spec.meaning[60:] + " */"]
    docs = ("Some text. `" + spec.meaning.replace(" ", "\n", 3) + "`").split("\n")
    header = _patch_file("Why.\n\n" + spec.meaning, "xen/include/public/xen.h", wrapped)
    pvh = _patch_file("x", "docs/misc/pvh.pandoc", docs)
    files = [("0001-x.patch", header.replace("-- \nxenpatch\n", "")
              + "diff --git " + pvh.split("\ndiff --git ", 1)[1])]
    assert judge_meaning(one, "xen/include/public/xen.h", files).ok
    altered = [(n, t.replace("must verify", "may verify", 1)) for n, t in files]
    result = judge_meaning(one, "xen/include/public/xen.h", altered)
    assert not result.ok and result.details[0].startswith("0001-x.patch (message): does not say")
    assert normalize("/* A B */\n+ * c  d\nB<e> `f`") == "a b c d e f"


MASTER_CHANGELOG = """\
# Changelog

## [4.23.0 UNRELEASED](https://xenbits.xenproject.org/gitweb/?p=xen.git;a=shortlog;h=staging) - TBD

### Changed
 - something

### Added

### Removed
 - old

## [4.22.0](https://example) - 2026-07-30

### Added
 - older
"""


def test_changelog_entry_goes_under_added_of_unreleased_only():
    env = make_env()
    entry = "On x86, the xl.cfg option \"ghcb\" " + "word " * 20
    new = apply_changelog(MASTER_CHANGELOG, env, entry)
    assert new is not None
    added = new.split("### Added\n", 1)[1].split("\n### Removed", 1)[0]
    assert added.startswith(" - On x86, the xl.cfg option") and added.endswith("\n")
    assert all(line.startswith("   ") for line in added.splitlines()[1:] if line)
    assert all(len(line) <= 79 for line in added.splitlines())
    assert new.count(" - older") == 1 and new.index(" - On x86") < new.index("### Removed")
    # No "### Added" yet: made before "### Removed".
    bare = MASTER_CHANGELOG.replace("### Added\n\n", "", 1)
    made = apply_changelog(bare, env, "entry")
    assert made is not None and "### Added\n - entry\n\n### Removed" in made
    # A stable tree (newest section released): nothing.
    assert apply_changelog(MASTER_CHANGELOG.split("## [4.22.0]")[0].replace(
        "4.23.0 UNRELEASED", "4.17.5"), env, "x") is None


def test_commit_message_puts_changes_after_the_cut_line():
    v2 = load_change(CHANGES, "sif-hvm-ghcb", 2)
    text = commit_message(make_env(), v2.patches[2], identity="A <a@b>", signoff=True)
    message, cut, notes = text.partition("\n---\n")
    assert message.endswith("\n\nSigned-off-by: A <a@b>") and cut
    assert notes.startswith("Changes in v2:\n - Refuse ghcb=1 for guests other than PVH:")
    assert all(len(line) <= 75 for line in text.splitlines())
    assert "---" not in commit_message(make_env(), v2.patches[1], identity="A <a@b>",
                                       signoff=True)
