"""Golden reply mails of `xenpatch review --format email` (fixed dates; `pytest --regen-golden` rewrites)."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
from reviewkit import bare_clone, chain, format_patches, replace_once, run_review, thread

GOLDEN = Path(__file__).parent / "golden" / "review"
XEN_H = "xen/include/public/xen.h"
PVH_DOC = "docs/misc/pvh.pandoc"
SIF_ANCHOR = "                                   /* P->M making the 3 level tree obsolete? */\n"
CC = ("Roger Pau Monne <roger.pau@citrix.com>", "Jan Beulich <jbeulich@suse.com>",
      "Andrew Cooper <andrew.cooper3@citrix.com>")
SEED_BODY = """Under SEV, the pagetables needs to be post-processed to add the C-bit
(to make the mapping encrypted). The guest is expected to query the C-bit
through CPUID. However, under SEV-ES and SEV-SNP modes, this instruction
now triggers #VC instead. The guest would need to setup a IDT very early
and instead use the early-GHCB protocol to emulate CPUID, which is
complicated.

Introduce SIF_HVM_GHCB so that the domain builder can tell the guest."""


@pytest.fixture(scope="module")
def repo(xen_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bare_clone(xen_tree, tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def env(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("golden-env")
    cfg = d / "config.toml"
    cfg.write_text('[identity]\nname = "Xen Review Bot"\nemail = "review-bot@example.org"\n'
                   f'[tree]\npath = "{repo}"\nbase = "base"\n'
                   '[series]\ndate = "Fri, 09 Jan 2026 09:00:00 +0000"\n')
    return {"XENPATCH_CONFIG": str(cfg), "XENPATCH_ABI_CACHE": str(d / "abicache")}


CASES = {
    "seed-rfc": dict(prefix="RFC PATCH", cover=None, commits=[dict(
        edits={XEN_H: replace_once(SIF_ANCHOR, SIF_ANCHOR +
               "#define SIF_HVM_GHCB      (1<<5)   /* Domain is SEV-ES/SNP guest that requires */\n"
               "                                   /* use of GHCB. */\n"),
               PVH_DOC: replace_once("## AP startup ##", "## SEV-ES/SNP guests ##\n\n"
                                     "When `SIF_HVM_GHCB` is set in the start info flags, the guest "
                                     "may use the GHCB MSR protocol.\n\n## AP startup ##")},
        subject="pvh: Introduce SIF_HVM_GHCB for SEV-ES/SNP guests", body=SEED_BODY)]),
    "abi-collision": dict(prefix="PATCH", cover="Two start-info flags\n\nA flag and its user.",
                          commits=[
        dict(edits={XEN_H: replace_once(SIF_ANCHOR, SIF_ANCHOR +
                    "#define SIF_TEST_FLAG     (1<<4)  /* Is this a test domain? */\n")},
             subject="xen/public: add SIF_TEST_FLAG", body="A flag for test domains."),
        dict(edits={"xen/common/kernel.c": lambda t: t + "\n/* SIF_TEST_FLAG is set by the builder. */\n"},
             subject="xen/common: mention SIF_TEST_FLAG", body="Say who sets it."),
    ]),
    "style-only": dict(prefix="PATCH", cover=None, commits=[dict(
        edits={"xen/common/kernel.c": lambda t: t + (
            "\nint test_style_count(const unsigned int *v, unsigned int n)\n{\n"
            "    unsigned int i, c = 0;\n\n    for(i = 0; i < n; i++) {\n"
            "        if ( v[i] )\n\t    c++;\n    }\n\n    return c; \n}\n")},
        subject="xen/common: add test_style_count", body="Count the set entries of an array.")]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reply_golden(case: str, tmp_path: Path, repo: Path, env: dict[str, str],
                      regen_golden: bool) -> None:
    spec = CASES[case]
    shas = chain(repo, "base", spec["commits"])
    files = format_patches(repo, "base", shas[-1], tmp_path / "out", prefix=spec["prefix"],
                           cover=spec["cover"])
    (tmp_path / f"{case}.mbox").write_bytes(thread(files, case, cc=CC))
    proc = run_review([f"{case}.mbox", "--format", "email"], tmp_path, env)
    assert proc.returncode in (0, 1), proc.stderr
    golden = GOLDEN / f"{case}.mbox"
    if regen_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(proc.stdout)
    assert proc.stdout == golden.read_text()
    # Every reply is a real mail threaded under the patch it reviews.
    chunks = [c for c in proc.stdout.split("From mboxrd@z Thu Jan  1 00:00:00 1970\n") if c]
    assert chunks
    for chunk in chunks:
        msg = email.message_from_string(chunk, policy=policy.default)
        assert msg["Subject"].startswith("Re: [")
        assert msg["In-Reply-To"].startswith(f"<{case}.")
        assert "xen-devel@lists.xenproject.org" in msg["Cc"]
        assert msg["To"] == "Teddy Astie <teddy.astie@vates.tech>"
        body = msg.get_content()
        assert "automated review" in body and "Reproduce: xenpatch review" in body
