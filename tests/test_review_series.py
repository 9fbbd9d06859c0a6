"""Series assembly from threads: subjects, patches, versions, missing patches."""

from __future__ import annotations

import email.utils
from pathlib import Path

import pytest

from xenpatch.errors import InputError
from xenpatch.review.series import (
    assemble,
    extract_diff,
    parse_mail,
    parse_patch,
    parse_subject,
    parse_trailers,
)
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
    ("[PATCHv2 3/4] a: b", 2, 3, 4, False, False, "a: b"),
    ("[RFC-PATCH v5] a: b", 5, None, None, False, False, "a: b"),
    ("[RESEND PATCH] a: b", 1, None, None, False, True, "a: b"),
    ("[RFCv2 PATCH 1/1] a: b", 2, 1, 1, True, False, "a: b"),
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


def _mail(mid: str, subject: str, body: str, refs: tuple[str, ...] = (), extra: str = "") -> bytes:
    head = f"From: A <a@example.org>\nSubject: {subject}\nMessage-ID: <{mid}>\n"
    if refs:
        head += f"In-Reply-To: <{refs[-1]}>\nReferences: {' '.join(f'<{r}>' for r in refs)}\n"
    return (head + extra + "\n" + body).encode()


DIFF = ("---\ndiff --git a/a.h b/a.h\n--- a/a.h\n+++ b/a.h\n@@ -1 +1,2 @@\n x\n+y\n")


def test_two_unrelated_series_are_not_mixed() -> None:
    mails = [parse_mail(_mail("a0@x", "[PATCH 0/2] a: one", "cover")),
             parse_mail(_mail("a1@x", "[PATCH 1/2] a: one", DIFF, ("a0@x",))),
             parse_mail(_mail("b0@x", "[PATCH 0/2] b: other", "cover")),
             parse_mail(_mail("b2@x", "[PATCH 2/2] b: other", DIFF, ("b0@x",))),
             parse_mail(_mail("a2@x", "[PATCH 2/2] a: one", DIFF, ("a0@x",)))]
    series = assemble(mails)
    assert series.message_id == "a0@x" and series.missing == ()
    assert [p.mail.message_id for p in series.patches] == ["a1@x", "a2@x"]
    from xenpatch.review.series import select_thread
    b = assemble(select_thread(mails, "<b2@x>"))
    assert b.message_id == "b0@x" and b.missing == (1,)
    with pytest.raises(InputError, match="no message <zz@x> among the 5 mails"):
        select_thread(mails, "zz@x")


def test_a_one_patch_suggestion_in_the_thread_does_not_replace_the_series() -> None:
    mails = [parse_mail(_mail("c0@x", "[PATCH 0/2] a: one", "cover")),
             parse_mail(_mail("c1@x", "[PATCH 1/2] a: one", DIFF, ("c0@x",))),
             parse_mail(_mail("c2@x", "[PATCH 2/2] a: two", DIFF, ("c0@x",))),
             parse_mail(_mail("s1@x", "[PATCH] a: how about this", DIFF, ("c0@x", "c1@x")))]
    series = assemble(mails)
    assert series.total == 2 and series.message_id == "c0@x"


def test_a_number_beyond_the_total_is_no_patch() -> None:
    with pytest.raises(InputError, match="no patch in the thread"):
        assemble([parse_mail(_mail("x5@x", "[PATCH 5/3] a: b", DIFF))])


def test_encodings_and_folding() -> None:
    import base64
    body = "Caf\u00e9 fix.\n\nSigned-off-by: Ren\u00e9 <r@x>\n" + DIFF
    raw = (b"From: =?UTF-8?q?Ren=C3=A9_Dev?= <r@x>\nSubject: [PATCH v2]\n =?UTF-8?q?x86=3A_caf=C3=A9?=\n"
           b"Message-ID: <e@x>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
           b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(body.encode()))
    mail = parse_mail(raw.replace(b"\n", b"\r\n"))
    assert mail.subject == "[PATCH v2] x86: caf\u00e9" and mail.sender == "Ren\u00e9 Dev <r@x>"
    series = assemble([mail])
    (p,) = series.patches
    assert series.version == 2 and p.summary == "x86: caf\u00e9"
    assert p.trailers == (("Signed-off-by", "Ren\u00e9 <r@x>"),)
    assert "+y" in p.diff.splitlines() and p.files == ("a.h",)


def test_an_8bit_body_that_names_no_charset_is_utf8() -> None:
    """``git format-patch`` declares no charset when only the diff is 8-bit; sent as it is,
    its bytes are what ``git am`` applies: read as UTF-8, not as ASCII (a U+FFFD for each
    byte).  Bytes that are not UTF-8 are still shown as U+FFFD, never raised on."""
    diff = DIFF.replace("+y\n", "+/* caf\u00e9 */\n")
    mail = parse_mail(_mail("u@x", "[PATCH] a: b", "Fix.\n\nSigned-off-by: A <a@x>\n" + diff))
    (p,) = assemble([mail]).patches
    assert "+/* caf\u00e9 */" in p.diff.splitlines()
    latin1 = parse_mail(_mail("l@x", "[PATCH] a: b", "x\n" + DIFF).replace(b"+y", b"+\xe9"))
    (q,) = assemble([latin1]).patches
    assert "+\ufffd" in q.diff.splitlines()


def test_patch_as_an_attachment() -> None:
    raw = (b"From: A <a@x>\nSubject: [PATCH] a: attached\nMessage-ID: <att@x>\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=BB\n\n--BB\nContent-Type: text/plain\n\nSee attached.\n"
           b"--BB\nContent-Type: text/x-patch; name=a.patch\n"
           b"Content-Disposition: attachment; filename=a.patch\n\n" + DIFF.encode() + b"--BB--\n")
    (p,) = assemble([parse_mail(raw)]).patches
    assert p.files == ("a.h",) and p.message == "See attached.\n"


def test_real_history_parses_as_git_sees_it(xen_git: Path, tmp_path: Path) -> None:
    """Every commit of RELEASE-4.21.0..RELEASE-4.22.0 (local xen.git), format-patched:
    summary, author, trailers and files as git itself reads them from the commit."""
    import subprocess
    rng = "RELEASE-4.21.0..RELEASE-4.22.0"
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin"}

    def git(*args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(xen_git), *args], env=env, check=True,
                              capture_output=True, text=True).stdout

    box = tmp_path / "range.mbox"
    box.write_text(git("format-patch", "--stdout", "--no-merges", "-M", rng))
    mails = load(str(box), archive=None, message_id=None,
                 limits=Limits(max_messages=5000, max_decompressed_bytes=1 << 30))
    records = git("log", "--reverse", "--no-merges", "-M", "--name-only",
                  "--format=%x00%s%x01%an <%ae>%x01%(trailers:only,unfold)%x01%B%x01",
                  rng).split("\0")[1:]
    assert len(mails) == len(records) > 500
    for mail, record in zip(mails, records, strict=True):
        subject, author, trailers, body, names = record.split("\x01")
        if "\n---\n" in body:  # git am and interpret-trailers stop at the divider; git log does not
            trailers = subprocess.run(["git", "interpret-trailers", "--parse"], input=body, env=env,
                                      check=True, capture_output=True, text=True).stdout
        p = parse_patch(mail, parse_subject(mail.subject))
        assert p.summary == subject
        assert email.utils.parseaddr(p.author) == email.utils.parseaddr(author), subject
        assert p.trailers == tuple(tuple(t.split(": ", 1)) for t in trailers.splitlines()), subject
        assert set(p.files) == set(names.split()), subject


def test_hostile_headers_and_mime_bombs() -> None:
    raw = b"From: \xff Bad <a@x>\nSubject: [PATCH] caf\xe9 \x1b[31mred\nMessage-ID: <s@x>\n\nbody\n"
    mail = parse_mail(raw)
    assert mail.subject == "[PATCH] caf\ufffd \ufffd[31mred" and "\x1b" not in mail.sender
    mail.subject.encode("utf-8")  # no lone surrogates left
    nested = b"From: a@x\nSubject: [PATCH] x\nMIME-Version: 1.0\n" + b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(300))
    with pytest.raises(InputError, match="more than 200 MIME multiparts"):
        parse_mail(nested)
    folded = nested.replace(b"Content-Type: multipart", b"Content-Type:\n multipart")
    with pytest.raises(InputError, match="more than 200 MIME multiparts"):
        parse_mail(folded)


def test_plain_diffs_binary_patches_and_quoted_names() -> None:
    plain = ("--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n"
             "--- a/y.c\n+++ b/y.c\n@@ -1 +1 @@\n-c\n+d\n")
    assert extract_diff(plain) == (plain, ("x.c", "y.c"))
    binary = ("diff --git a/logo.png b/logo.png\nnew file mode 100644\nindex 0000000..e69de29\n"
              "GIT binary patch\nliteral 6\nNcmZQzWMXCj0000100IC2\n\nliteral 0\nHcmV?d00001\n\n")
    diff, files = extract_diff(binary + "-- \n2.39.5\n\n")
    assert diff == binary and files == ("logo.png",)
    quoted = ('diff --git "a/caf\\303\\251.h" "b/caf\\303\\251.h"\n--- "a/caf\\303\\251.h"\n'
              '+++ "b/caf\\303\\251.h"\n@@ -1 +1 @@\n-a\n+b\n')
    assert extract_diff(quoted)[1] == ("caf\u00e9.h",)


def test_crlf_mail_body_is_read_as_git_am_reads_it() -> None:
    raw = _mail("crlf@x", "[PATCH] a: crlf", "Fix.\n\nSigned-off-by: A <a@example.org>\n" + DIFF)
    (p,) = assemble([parse_mail(raw.replace(b"\n", b"\r\n"))]).patches
    assert "\r" not in p.diff and p.files == ("a.h",) and p.trailers[0][0] == "Signed-off-by"


def test_a_reply_that_kept_the_subject_does_not_replace_the_patch() -> None:
    quoted = "On Monday A wrote:\n> +y\n\nNo.\n"
    mails = [parse_mail(_mail("k0@x", "[PATCH 0/1] a: one", "cover")),
             parse_mail(_mail("k1@x", "[PATCH 1/1] a: one", DIFF, ("k0@x",))),
             parse_mail(_mail("k2@x", "[PATCH 1/1] a: one", quoted, ("k0@x", "k1@x"))),
             parse_mail(_mail("k3@x", "[PATCH 0/1] a: one", quoted, ("k0@x",)))]
    series = assemble(mails)
    assert series.cover is not None and series.cover.message_id == "k0@x"
    assert [p.mail.message_id for p in series.patches] == ["k1@x"]
    assert [m.message_id for m in series.replies] == ["k2@x", "k3@x"]
    resend = parse_mail(_mail("k4@x", "[PATCH RESEND 1/1] a: one", DIFF, ("k0@x",)))
    assert assemble([*mails, resend]).patches[0].mail.message_id == "k4@x"


def test_author_is_header_ready_and_parses_to_gits_name() -> None:
    raw = _mail("au@x", "[PATCH] a: b", "From: Doe, John <jd@example.org>\n\nFix.\n" + DIFF)
    (p,) = assemble([parse_mail(raw)]).patches
    assert p.author == '"Doe, John" <jd@example.org>'
    assert email.utils.getaddresses([p.author]) == [("Doe, John", "jd@example.org")]
