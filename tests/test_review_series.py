"""Series assembly from threads: subjects, patches, versions, missing patches."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenpatch.errors import InputError
from xenpatch.review.series import assemble, extract_diff, parse_mail, parse_subject, parse_trailers
from xenpatch.review.sources import Limits, load

DATA = Path(__file__).parent / "data" / "review"


@pytest.mark.parametrize("subject, version, number, total, rfc, resend, summary", [
    ("[PATCH] x86/hvm: fix it", 1, None, None, False, False, "x86/hvm: fix it"),
    ("[PATCH v3 2/5] xen/public: add SIF_X", 3, 2, 5, False, False, "xen/public: add SIF_X"),
    ("[RFC PATCH 0/3] SEV", 1, 0, 3, True, False, "SEV"),
    ("[PATCH RFC v2] a: b", 2, None, None, True, False, "a: b"),
    ("[PATCH v2 RESEND 1/2] a: b", 2, 1, 2, False, True, "a: b"),
    ("[XEN PATCH] tools: x", 1, None, None, False, False, "tools: x"),
    ("[PATCH for-4.21 v3 2/5] a: b", 3, 2, 5, False, False, "a: b"),
    ("[Xen-devel] [PATCH v4 10/12]   a:\n b", 4, 10, 12, False, False, "a: b"),
    ("[PATCH 00/10] big", 1, 0, 10, False, False, "big"),
])
def test_subject_prefixes_seen_on_xen_devel(subject, version, number, total, rfc, resend,
                                            summary) -> None:
    info = parse_subject(subject)
    assert info.is_patch and not info.is_reply
    assert (info.version, info.number, info.total, info.rfc, info.resend, info.summary) == (
        version, number, total, rfc, resend, summary)


@pytest.mark.parametrize("subject", ["Re: [PATCH 1/2] a: b", "RE: Re: [PATCH] a", "AW: [PATCH v2] x",
                                     "[Xen-devel] Re: [PATCH 3/4] y"])
def test_replies_are_replies(subject: str) -> None:
    assert parse_subject(subject).is_reply


def test_a_mail_without_patch_tag_is_not_a_patch() -> None:
    info = parse_subject("[ANNOUNCE] Xen 4.21 released")
    assert not info.is_patch and info.summary == "Xen 4.21 released"


def test_v1_and_v2_in_one_thread_gives_v2_and_v1_on_request() -> None:
    mails = load(str(DATA / "v1-v2.mbox"), archive=None, message_id=None, limits=Limits())
    assert len(mails) == 7
    series = assemble(mails)
    assert (series.version, series.total, series.missing) == (2, 2, ())
    assert series.versions == (1, 2)
    assert series.cover is not None and series.cover.message_id == "c2@example.org"
    assert series.message_id == "c2@example.org"
    assert series.subject == "xen/public: two flags"
    assert [p.mail.message_id for p in series.patches] == ["p1v2@example.org", "p2v2@example.org"]
    assert series.base_commit == "e02d716621fd00000000000000000000000000bb"
    p1 = series.patches[0]
    assert p1.summary == "xen/public: add SIF_A" and p1.author == "Alice Author <alice@example.org>"
    assert p1.trailers == (("Fixes", '123456789abc ("xen: something")'),
                           ("Reviewed-by", "Rita Reviewer <rita@example.com>"),
                           ("Signed-off-by", "Alice Author <alice@example.org>"))
    assert p1.files == ("xen/include/public/xen.h",)
    assert p1.diff.startswith("diff --git a/xen/include/public/xen.h")
    assert p1.diff.endswith(" #define SIF_MULTIBOOT_MOD (1<<2)\n")  # the "-- " signature is cut
    assert "+#define SIF_A (1<<6)" in p1.diff
    assert p1.message.startswith("Add SIF_A") and "---" not in p1.message
    # the review reply, with its quoted diff, is not a patch
    assert [m.message_id for m in series.replies] == ["r1@example.org"]
    assert series.thread_addresses == ("Alice Author <alice@example.org>",
                                       "xen-devel@lists.xenproject.org",
                                       "Rita Reviewer <rita@example.com>", "Jan <jan@example.net>")
    old = assemble(mails, version=1)
    assert old.version == 1 and old.base_commit == "e02d716621fd00000000000000000000000000aa"
    assert [p.mail.message_id for p in old.patches] == ["p1v1@example.org", "p2v1@example.org"]
    with pytest.raises(InputError, match="version 3 is not in the thread"):
        assemble(mails, version=3)


def test_mboxrd_quoting_is_undone() -> None:
    mails = load(str(DATA / "v1-v2.mbox"), archive=None, message_id=None, limits=Limits())
    cover = mails[0].body.splitlines()
    assert "From the start: a line that mbox must quote." in cover
    assert ">From quoted already." in cover


def test_mboxo_and_a_missing_patch() -> None:
    mails = load(str(DATA / "missing-2of3.mbox"), archive=None, message_id=None, limits=Limits())
    series = assemble(mails)
    assert series.rfc and series.total == 3 and series.missing == (2,)
    assert [p.number for p in series.patches] == [1, 3]


def test_newest_complete_version_wins_over_an_incomplete_newer_one() -> None:
    mails = load(str(DATA / "v1-v2.mbox"), archive=None, message_id=None, limits=Limits())
    without = [m for m in mails if m.message_id != "p2v2@example.org"]
    assert assemble(without).version == 1
    only_v2 = [m for m in without if "v2" in m.subject]
    partial = assemble(only_v2)
    assert partial.version == 2 and partial.missing == (2,)


def test_no_patch_in_the_thread_is_an_input_error() -> None:
    mails = load(str(DATA / "v1-v2.mbox"), archive=None, message_id=None, limits=Limits())
    with pytest.raises(InputError, match="no patch"):
        assemble([m for m in mails if m.subject.startswith("Re:")])


def test_max_patches() -> None:
    mails = load(str(DATA / "v1-v2.mbox"), archive=None, message_id=None, limits=Limits())
    with pytest.raises(InputError, match="max_patches"):
        assemble(mails, max_patches=1)


def test_unnumbered_single_patch_with_in_body_from() -> None:
    raw = (b"From: Bot Sender <bot@example.org>\nSubject: [PATCH] tools: fix\n"
           b"Message-ID: <s1@x>\n\nFrom: Real Author <real@example.org>\n\nFix it.\n\n"
           b"Signed-off-by: Real Author <real@example.org>\n---\n"
           b"diff --git a/tools/a.c b/tools/a.c\nnew file mode 100644\n--- /dev/null\n+++ b/tools/a.c\n"
           b"@@ -0,0 +1 @@\n+int a;\n")
    series = assemble([parse_mail(raw)])
    (p,) = series.patches
    assert (p.number, p.total, series.total) == (1, 1, 1)
    assert p.author == "Real Author <real@example.org>"
    assert p.message == "Fix it.\n\nSigned-off-by: Real Author <real@example.org>\n"
    assert p.files == ("tools/a.c",)


def test_diff_of_a_deletion_and_a_rename() -> None:
    text = ("diff --git a/x.h b/x.h\ndeleted file mode 100644\n--- a/x.h\n+++ /dev/null\n"
            "@@ -1,2 +0,0 @@\n-a\n-b\n"
            "diff --git a/old.c b/new.c\nsimilarity index 100%\nrename from old.c\nrename to new.c\n"
            "-- \n2.1\n")
    diff, files = extract_diff(text)
    assert files == ("x.h", "new.c")
    assert not diff.endswith("2.1\n")


def test_trailers_need_the_last_paragraph() -> None:
    assert parse_trailers("Fix.\n\nSee: the list\nand more text\nand more\nand more\n") == ()
    assert parse_trailers("Fix.\n\nAcked-by: A <a@b>\nSigned-off-by: B <b@c>\n") == (
        ("Acked-by", "A <a@b>"), ("Signed-off-by", "B <b@c>"))
