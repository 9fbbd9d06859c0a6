"""`xenpatch review` on the real Xen 4.17.5 tree: series written as mboxes, reviewed through the CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest
from reviewkit import AUTHOR, bare_clone, chain, format_patches, git, replace_once, run_review, thread

XEN_H = "xen/include/public/xen.h"
SIF_ANCHOR = "                                   /* P->M making the 3 level tree obsolete? */\n"


@pytest.fixture(scope="module")
def repo(xen_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bare_clone(xen_tree, tmp_path_factory.mktemp("review"))


@pytest.fixture(scope="module")
def env(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A config with a fixed reviewer and date, and one ABI cache for the module (the base's
    model is computed once)."""
    d = tmp_path_factory.mktemp("review-env")
    cfg = d / "config.toml"
    cfg.write_text(f'[identity]\nname = "Xen Reviewer"\nemail = "reviewer@example.org"\n'
                   f'[tree]\npath = "{repo}"\nbase = "base"\n'
                   '[series]\ndate = "Mon, 05 Jan 2026 10:00:00 +0000"\n')
    return {"XENPATCH_CONFIG": str(cfg), "XENPATCH_ABI_CACHE": str(d / "abicache")}


def sif(define: str) -> dict:
    return {XEN_H: replace_once(SIF_ANCHOR, SIF_ANCHOR + define + "\n")}


def review(tmp: Path, repo: Path, env: dict[str, str], commits: list[dict], *args: str,
           fmt: str = "json", cover: str | None = None, base: str = "base",
           prefix: str = "PATCH") -> tuple[subprocess.CompletedProcess, dict | str]:
    shas = chain(repo, base, commits)
    files = format_patches(repo, base, shas[-1], tmp / "out", prefix=prefix, cover=cover)
    (tmp / "series.mbox").write_bytes(thread(files, "t"))
    proc = run_review(["series.mbox", "--format", fmt, *args], tmp, env)
    assert "Traceback" not in proc.stderr, proc.stderr
    if fmt == "json" and proc.returncode in (0, 1):
        return proc, json.loads(proc.stdout)
    return proc, proc.stdout


def by_rule(doc: dict, rule: str) -> list[dict]:
    return [f for f in doc["findings"] if f["rule"] == rule]


def line_of(repo: Path, rev: str, path: str, needle: str) -> int:
    lines = git(repo, "show", f"{rev}:{path}").split("\n")
    return next(i for i, ln in enumerate(lines, 1) if needle in ln)


GOOD = "xen/public: add SIF_TEST_FLAG"


def test_clean_flag_addition_exit_0(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    proc, doc = review(tmp_path, repo, env, [dict(
        edits=sif("#define SIF_TEST_FLAG     (1<<5)  /* A test flag. */"), subject=GOOD,
        body="Add a flag for the tests.")])
    assert proc.returncode == 0, proc.stdout
    assert isinstance(doc, dict)
    assert not [f for f in doc["findings"] if f["severity"] != "info"], doc["findings"]
    assert doc["schema"] == "xenpatch-review/1"
    s = doc["series"]
    assert (s["version"], s["patches"], s["base_chosen_by"]) == (1, 1, "base-commit")
    assert s["base"] == git(repo, "rev-parse", "base^{commit}").strip()
    facts = by_rule(doc, "abi-family")
    assert facts and facts[0]["message"] == "SIF_ bits now used: 0-5, reserved: 8-15, next free: 6"


@pytest.mark.parametrize("define, rule, needle", [
    ("#define SIF_TEST_FLAG     (1<<4)  /* Taken. */", "abi-bit-collision", "SIF_TEST_FLAG"),
    ("#define SIF_TEST_FLAG     (1<<9)  /* Reserved. */", "abi-reserved-bits", "SIF_TEST_FLAG"),
])
def test_abi_check_rules(tmp_path: Path, repo: Path, env: dict[str, str], define: str, rule: str,
                         needle: str) -> None:
    proc, doc = review(tmp_path, repo, env, [dict(edits=sif(define), subject=GOOD)])
    assert proc.returncode == 1
    assert isinstance(doc, dict)
    found = by_rule(doc, rule)
    assert len(found) == 1, doc["findings"]
    f = found[0]
    assert (f["severity"], f["patch"], f["file"]) == ("error", 1, XEN_H)
    assert f["line"] == 876  # the added line, right below SIF_VIRT_P2M_4TOOLS and its comment


def test_value_collision(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    gnt = "xen/include/public/grant_table.h"
    proc, doc = review(tmp_path, repo, env, [dict(edits={gnt: replace_once(
        "#define GNTTABOP_cache_flush\t      12\n",
        "#define GNTTABOP_cache_flush\t      12\n#define GNTTABOP_test_op           11\n")},
        subject="xen/public: add GNTTABOP_test_op")])
    assert isinstance(doc, dict)
    found = by_rule(doc, "abi-value-collision")
    assert [(f["severity"], f["patch"], f["file"], f["line"]) for f in found] == \
        [("error", 1, gnt, 301)], doc["findings"]
    assert proc.returncode == 1


def test_layout_value_and_removal(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    """A field inserted into start_info, a mask changed, a flag removed: one patch each."""
    proc, doc = review(tmp_path, repo, env, [
        dict(edits={XEN_H: replace_once(
            "    unsigned long shared_info;  /* MACHINE address of shared info struct. */\n",
            "    unsigned long shared_info;  /* MACHINE address of shared info struct. */\n"
            "    unsigned long test_field;\n")}, subject="xen/public: grow start_info"),
        dict(edits={XEN_H: replace_once("(0xFF<<8) /* reserve", "(0x7F<<8) /* reserve")},
             subject="xen/public: shrink SIF_PM_MASK"),
        dict(edits={XEN_H: replace_once(
            "#define SIF_MOD_START_PFN (1<<3)  /* Is mod_start a PFN? */\n", "")},
             subject="xen/public: drop SIF_MOD_START_PFN"),
    ])
    assert proc.returncode == 1
    assert isinstance(doc, dict)
    layout = by_rule(doc, "abi-layout-change")
    assert layout and {f["patch"] for f in layout} == {1}
    assert all(f["severity"] == "error" and f["file"] == XEN_H for f in layout)
    assert {f["line"] for f in layout} == {833}, layout  # the added field's line
    assert any("struct start_info: size" in f["message"] for f in layout)
    value = by_rule(doc, "abi-value-change")
    assert [(f["severity"], f["patch"], f["line"]) for f in value] == [("error", 2, 877)], value
    assert "SIF_PM_MASK: value 65280 -> 32512" in value[0]["message"]
    removed = by_rule(doc, "abi-removed")
    assert [(f["severity"], f["patch"], f["file"]) for f in removed] == [("error", 3, XEN_H)]
    assert "SIF_MOD_START_PFN removed" in removed[0]["message"]


def test_base_only_finding_not_reported(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    """The base itself has a bit collision; a series on top that adds a clean flag is not blamed."""
    bad_base = chain(repo, "base", [dict(edits=sif("#define SIF_OLD_CLASH     (1<<4)  /* Clash. */"),
                                         subject="xen/public: a clash already merged")])[0]
    proc, doc = review(tmp_path, repo, env, [dict(
        edits={XEN_H: replace_once("#define SIF_PM_MASK", "#define SIF_TEST_FLAG     (1<<6)\n"
                                   "#define SIF_PM_MASK")}, subject=GOOD)], base=bad_base)
    assert isinstance(doc, dict)
    assert not by_rule(doc, "abi-bit-collision"), doc["findings"]
    assert proc.returncode == 0


def test_compat_layout_and_docs_missing(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    mem = "xen/include/public/memory.h"
    gnt = "xen/include/public/grant_table.h"
    proc, doc = review(tmp_path, repo, env, [
        dict(edits={mem: replace_once("#define XENMEM_get_vnumainfo                26\n",
                                      "#define XENMEM_get_vnumainfo                26\n\n"
                                      "struct xen_test_compat {\n    uint32_t a;\n"
                                      "    uint64_t b;\n};\n")},
             subject="xen/public: add struct xen_test_compat"),
        dict(edits={gnt: replace_once("#define GNTTABOP_cache_flush\t      12\n",
                                      "#define GNTTABOP_cache_flush\t      12\n"
                                      "#define GNTTABOP_test_op           13\n")},
             subject="xen/public: add GNTTABOP_test_op"),
    ])
    assert isinstance(doc, dict)
    compat = by_rule(doc, "compat-layout")
    assert [(f["severity"], f["patch"], f["file"]) for f in compat] == [("warning", 1, mem)], compat
    assert compat[0]["line"] == line_of(repo, "base", mem, "#define XENMEM_get_vnumainfo") + 2
    assert "12 bytes on x86_32 and 16 on x86_64" in compat[0]["message"]
    docs = by_rule(doc, "docs-missing")
    assert [(f["severity"], f["patch"], f["file"], f["line"]) for f in docs] == \
        [("warning", 2, gnt, 301)], docs
    assert "docs/misc/grant-tables.txt" in docs[0]["message"]
    assert proc.returncode == 0  # warnings only


def test_header_compile(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    """`new` is a C++ keyword: headers++.chk fails, C is fine."""
    proc, doc = review(tmp_path, repo, env, [dict(
        edits={XEN_H: replace_once("#define SIF_PM_MASK", "struct sif_test { int new; };\n"
                                   "#define SIF_PM_MASK")}, subject="xen/public: add sif_test")])
    assert isinstance(doc, dict)
    found = by_rule(doc, "header-compile")
    assert [(f["severity"], f["patch"], f["file"]) for f in found] == [("error", 1, XEN_H)], \
        doc["findings"]
    assert "headers++.chk" in found[0]["message"]
    assert found[0]["line"] == 876
    assert proc.returncode == 1


def test_unsafe_include_never_reads_the_file(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    commits = [dict(edits={XEN_H: replace_once("#define SIF_PM_MASK", '#include "/etc/passwd"\n'
                                               "#define SIF_PM_MASK")},
                    subject="xen/public: include a file")]
    outputs = []
    for fmt in ("json", "text", "markdown", "email"):
        proc, out = review(tmp_path / fmt, repo, env, commits, fmt=fmt)
        assert proc.returncode == 1, proc.stderr
        outputs.append(proc.stdout + proc.stderr)
        if fmt == "json":
            assert isinstance(out, dict)
            found = by_rule(out, "unsafe-include")
            assert [(f["severity"], f["patch"], f["file"], f["line"]) for f in found] == \
                [("error", 1, XEN_H, 876)]
    secret = [ln for ln in Path("/etc/passwd").read_text().splitlines() if ln.strip()]
    for text in outputs:
        for ln in secret:
            assert ln not in text


def test_vendor_term_on_the_seed_hunk(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    proc, doc = review(tmp_path, repo, env, [dict(
        edits=sif("#define SIF_HVM_GHCB      (1<<5)   /* Domain is SEV-ES/SNP guest that requires */\n"
                  "                                   /* use of GHCB. */"),
        subject="pvh: Introduce SIF_HVM_GHCB for SEV-ES/SNP guests")], prefix="RFC PATCH")
    assert proc.returncode == 0
    assert isinstance(doc, dict)
    assert not [f for f in doc["findings"] if f["severity"] == "error"]
    found = by_rule(doc, "vendor-term")
    assert [(f["severity"], f["patch"], f["file"], f["line"]) for f in found] == \
        [("warning", 1, XEN_H, 876)]
    assert "GHCB, SEV-ES, SNP" in found[0]["message"]
    assert doc["series"]["rfc"] is True


def test_vendor_term_not_in_arch_headers(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    x86 = "xen/include/public/arch-x86/xen.h"
    proc, doc = review(tmp_path, repo, env, [dict(edits={x86: lambda t: t + "/* AMD SEV-SNP */\n"},
                                                  subject="x86/public: a comment")])
    assert isinstance(doc, dict)
    assert not by_rule(doc, "vendor-term")


def test_tags_and_subject_through_the_cli(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    other = ("Someone Else", "someone@example.org")
    proc, doc = review(tmp_path, repo, env, [
        dict(edits=sif("#define SIF_TEST_FLAG     (1<<5)"), subject="add a flag without an area",
             trailers=[]),
        dict(edits={XEN_H: replace_once("#define SIF_PM_MASK", "#define SIF_TEST_TWO      (1<<6)\n"
                                        "#define SIF_PM_MASK")},
             subject="xen/public: " + "a very long subject " * 4,
             trailers=["Reviewed-by: Jan Beulich <jbeulich@suse.com>",
                       f"Signed-off-by: {other[0]} <{other[1]}>",
                       "Fixes: 1234abcd (\"xen: something\")",
                       "Acked-by: CI Bot <ci-bot@example.org>"]),
    ])
    assert proc.returncode == 1
    assert isinstance(doc, dict)
    got = sorted((f["rule"], f["severity"], f["patch"]) for f in doc["findings"]
                 if f["rule"] in ("signed-off-by", "tags", "subject"))
    assert got == [("signed-off-by", "error", 1), ("signed-off-by", "error", 2),
                   ("subject", "warning", 1), ("subject", "warning", 2),
                   ("tags", "error", 2), ("tags", "warning", 2), ("tags", "warning", 2)], got
    messages = " ".join(f["message"] for f in doc["findings"])
    assert f"no Signed-off-by: from the author {AUTHOR[0]} <{AUTHOR[1]}>" in messages
    assert "the commit id has 8 characters, not 12" in messages


C_FILE = "xen/common/kernel.c"
LINUX_FILE = "xen/lib/rbtree.c"
LIBXL_FILE = "tools/libs/light/libxl_create.c"
BAD_C = ("\nstatic int test_style(int x)\n{\n\tif(x) {\n        return 1;  \n    }\n"
         "    return test_style_helper_with_a_long_name(x, x, x, x, x, x, x, x, x, x, x, x);\n}\n")


def test_style_by_file_kind(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    """The hypervisor's rules on xen/common, only trailing white space on a Linux-style file,
    libxl's own bracing left alone."""
    proc, doc = review(tmp_path, repo, env, [
        dict(edits={C_FILE: lambda t: t + BAD_C}, subject="xen/common: add test_style"),
        dict(edits={LINUX_FILE: lambda t: t + "\nstatic int rb_test(int x)\n{\n\tif (x) {\n"
                    "\t\treturn 1;  \n\t}\n\treturn 0;\n}\n"}, subject="xen/lib: add rb_test"),
        dict(edits={LIBXL_FILE: lambda t: t + "\nstatic int libxl__test(int x)\n{\n"
                    "    if (x) {\n        return 1;\n    }\n    return 0;\n}\n"},
             subject="tools/libxl: add libxl__test"),
    ])
    assert isinstance(doc, dict)
    style = by_rule(doc, "style")
    assert all(f["severity"] == "warning" for f in style)
    end = len(git(repo, "show", f"base:{C_FILE}").split("\n")) - 1  # lines of the base file
    mine = sorted((f["line"] - end, f["message"].split(";")[0].split(":")[0]) for f in style
                  if f["patch"] == 1)
    assert mine == [(4, "brace on the statement's line"), (4, "indented with a tab"),
                    (4, "no space inside the brackets of 'if'"),
                    (5, "trailing white space"), (7, "line is 82 columns (more than 80)")], mine
    linux = [f["message"] for f in style if f["patch"] == 2]
    assert linux == ["trailing white space"], linux
    assert not [f for f in style if f["patch"] == 3]
    assert proc.returncode == 0


def test_series_that_does_not_apply(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    """Patch 1 was written on a tree where SIF_PM_MASK reads otherwise: it does not apply onto
    the base; the tags and subjects of both patches are still reviewed."""
    other = chain(repo, "base", [dict(edits={XEN_H: replace_once("(0xFF<<8) /* reserve",
                                                                 "(0xFF<<8) /* keep")},
                                      subject="xen/public: reword")])[0]
    proc, doc = review(tmp_path, repo, env, [
        dict(edits={XEN_H: replace_once("(0xFF<<8) /* keep", "(0xFF<<8) /* hold")},
             subject="xen/public: reword again"),
        dict(edits=sif("#define SIF_TEST_FLAG     (1<<5)"), subject="no area here", trailers=[]),
    ], "--base", "base", base=other)
    assert proc.returncode == 1
    assert isinstance(doc, dict)
    failed = by_rule(doc, "apply-failed")
    assert [(f["severity"], f["patch"], f["file"]) for f in failed] == \
        [("error", 1, XEN_H), ("error", 2, None)], failed
    assert "patch 1/2 does not apply onto" in failed[0]["message"]
    assert doc["series"]["applied"] == [] and doc["series"]["base_chosen_by"] == "--base"
    assert by_rule(doc, "signed-off-by") and by_rule(doc, "subject")


def test_cover_and_v2_in_one_thread(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    v1 = chain(repo, "base", [dict(edits=sif("#define SIF_TEST_FLAG     (1<<4)"), subject=GOOD),
                              dict(edits={C_FILE: lambda t: t + "\n/* v1 */\n"},
                                   subject="xen/common: note")])
    v2 = chain(repo, "base", [dict(edits=sif("#define SIF_TEST_FLAG     (1<<5)"), subject=GOOD),
                              dict(edits={C_FILE: lambda t: t + "\n/* v2 */\n"},
                                   subject="xen/common: note")])
    one = format_patches(repo, "base", v1[-1], tmp_path / "v1", cover="Test flags\n\nTwo patches.")
    two = format_patches(repo, "base", v2[-1], tmp_path / "v2", cover="Test flags\n\nTwo patches.",
                         version=2)
    reply = (b"From: Roger <roger@example.org>\nTo: xen-devel@lists.xenproject.org\n"
             b"Subject: Re: [PATCH 1/2] xen/public: add SIF_TEST_FLAG\n"
             b"Message-ID: <reply.1@example.org>\nIn-Reply-To: <v1.1@example.org>\n"
             b"Date: Mon, 29 Dec 2025 10:00:00 +0100\n\n> +#define SIF_TEST_FLAG\nBit 4 is taken.\n\n")
    mbox = thread(one, "v1") + b"From roger Mon Dec 29 10:00:00 2025\n" + reply + \
        thread(two, "v2", reply_to="v1.0@example.org")
    (tmp_path / "thread.mbox").write_bytes(mbox)
    proc = run_review(["thread.mbox", "--format", "json"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(proc.stdout)
    assert (doc["series"]["version"], doc["series"]["patches"]) == (2, 2)
    assert doc["series"]["message_id"] == "v2.0@example.org"
    assert not by_rule(doc, "abi-bit-collision")
    proc = run_review(["thread.mbox", "--format", "json", "--version", "1"], tmp_path, env)
    assert proc.returncode == 1
    assert by_rule(json.loads(proc.stdout), "abi-bit-collision")


def test_missing_patch_2_of_3(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    shas = chain(repo, "base", [
        dict(edits=sif("#define SIF_TEST_FLAG     (1<<5)"), subject=GOOD),
        dict(edits={C_FILE: lambda t: t + "\n/* two */\n"}, subject="xen/common: two"),
        dict(edits={LIBXL_FILE: lambda t: t + "\n/* three */\n"}, subject="tools/libxl: three"),
    ])
    files = format_patches(repo, "base", shas[-1], tmp_path / "out", cover="Three\n\nThree patches.")
    (tmp_path / "thread.mbox").write_bytes(thread([files[0], files[1], files[3]], "m"))
    proc = run_review(["thread.mbox", "--format", "json"], tmp_path, env)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    missing = by_rule(doc, "series-incomplete")
    assert [(f["severity"], f["patch"]) for f in missing] == [("error", 2)]
    assert doc["series"]["missing"] == [2]
    # patch 3 is applied without patch 2 (it does not depend on it) and reviewed
    assert doc["series"]["applied"] == [1, 3]


def test_unknown_base_is_exit_2(tmp_path: Path, repo: Path, env: dict[str, str]) -> None:
    proc, _ = review(tmp_path, repo, env, [dict(edits=sif("#define SIF_TEST_FLAG     (1<<5)"),
                                                subject=GOOD)], "--base", "no-such-rev", fmt="text")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"xenpatch: --base no-such-rev: not a revision of {repo}"], proc.stderr


def test_bad_input_is_one_line_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "malformed.mbox").write_bytes(b"this is not a mail\nat all\n")
    bomb = tmp_path / "bomb.mbox.gz"
    with gzip.open(bomb, "wb") as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(80):
            f.write(chunk)
    for name in ("malformed.mbox", "bomb.mbox.gz"):
        proc = run_review([name], tmp_path, env)
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("xenpatch: ") and name in lines[0], lines
        assert "Traceback" not in proc.stderr


def test_send_replies_through_a_real_smtp_server(tmp_path: Path, repo: Path,
                                                 env: dict[str, str]) -> None:
    """--send is a dry run (nothing sent, the mbox is the output) until --yes."""
    import socket

    from aiosmtpd.controller import Controller

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append(envelope.original_content or envelope.content)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        cfg = Path(env["XENPATCH_CONFIG"]).read_text() + \
            f'[smtp]\nserver = "127.0.0.1"\nport = {port}\nencryption = "none"\n'
        (tmp_path / "config.toml").write_text(cfg)
        mine = {**env, "XENPATCH_CONFIG": str(tmp_path / "config.toml"),
                "GIT_CONFIG_GLOBAL": "/dev/null"}
        proc, out = review(tmp_path, repo, mine, [dict(
            edits=sif("#define SIF_TEST_FLAG     (1<<4)"), subject=GOOD)], "--send", fmt="email")
        assert proc.returncode == 1 and not received
        assert "dry run: nothing sent; 1 reply" in proc.stderr
        assert "In-Reply-To: <t.0@example.org>" in str(out)
        proc = run_review(["series.mbox", "--format", "email", "--send", "--yes"], tmp_path, mine)
        assert proc.returncode == 1, proc.stderr
        assert "sent 1 reply via" in proc.stderr
        assert len(received) == 1
        assert b"In-Reply-To: <t.0@example.org>" in received[0]
        assert b"abi-bit-collision" in received[0]
    finally:
        controller.stop()
