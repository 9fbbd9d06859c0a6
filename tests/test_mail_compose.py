"""Composing a series's mail (pure), the send record, SMTP settings, and golden dry-run output."""

from __future__ import annotations

import json
import mailbox
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from conftest import check_golden

from xenpatch.cli import main
from xenpatch.config import load_config
from xenpatch.errors import ConfigError, InputError, UsageError
from xenpatch.mail import compose, smtp
from xenpatch.mail import state as st
from xenpatch.mail.maintainers import Recipients

GOLDEN = Path(__file__).parent / "golden" / "mail"
DATE = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
SENDER = "Ada Tester <ada@example.org>"

COVER = """\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Ada Tester <ada@example.org>
Date: Fri, 27 Nov 2026 12:00:00 +0000
Subject: [PATCH v2 0/2] Two small things

A blurb.
From here on, a line that starts with "From " must survive the mbox.

Ada Tester (1):
  xen/public: a comment
Roger Pau Monné (1):
  tools/libxl: a long line

--
2.39.5
"""

PATCH1 = """\
From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: Ada Tester <ada@example.org>
Date: Fri, 27 Nov 2026 12:00:00 +0000
Subject: [PATCH v2 1/2] xen/public: a comment
Cc: Carol <carol@example.org>

Signed-off-by: Ada Tester <ada@example.org>
---
 xen/include/public/xen.h | 1 +
 1 file changed, 1 insertion(+)

diff --git a/xen/include/public/xen.h b/xen/include/public/xen.h
--- a/xen/include/public/xen.h
+++ b/xen/include/public/xen.h
@@ -1,3 +1,4 @@
+/* a comment */
 /******************************************************************************
  * xen.h
  *
--
2.39.5
"""

PATCH2 = """\
From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001
From: =?UTF-8?q?Roger=20Pau=20Monn=C3=A9?= <roger.pau@citrix.com>
Date: Fri, 27 Nov 2026 12:00:00 +0000
Subject: [PATCH v2 2/2] tools/libxl: a long line
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

Signed-off-by: Roger Pau Monné <roger.pau@citrix.com>
---
diff --git a/tools/libs/light/libxl_dom.c b/tools/libs/light/libxl_dom.c
--- a/tools/libs/light/libxl_dom.c
+++ b/tools/libs/light/libxl_dom.c
@@ -1,2 +1,3 @@
+/* LONG */
 /*
  * Copyright (C) 2009      Citrix Ltd.
--
2.39.5
""".replace("LONG", "x" * 1200)


def write_series(d: Path, cover: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    if cover:
        (d / "v2-0000-cover-letter.patch").write_text(COVER, encoding="utf-8")
    (d / "v2-0001-xen-public-a-comment.patch").write_text(PATCH1, encoding="utf-8")
    (d / "v2-0002-tools-libxl-a-long-line.patch").write_text(PATCH2, encoding="utf-8")
    return d


def files_of(d: Path) -> tuple[compose.PatchFile, ...]:
    return compose.check_series([compose.parse_patch_file(p.name, p.read_bytes())
                                 for p in sorted(d.glob("*.patch"))], str(d))


FOUND = {"v2-0001-xen-public-a-comment.patch":
         Recipients(("xen-devel@lists.xenproject.org",), ("Jan Beulich <jbeulich@suse.com>",)),
         "v2-0002-tools-libxl-a-long-line.patch":
         Recipients(("xen-devel@lists.xenproject.org",),
                    ("Wei Liu <wl@xen.org>", "Anthony PERARD <anthony.perard@citrix.com>",
                     "Anthony Perard <anthony.perard@citrix.com>"))}


def compose_it(files: tuple[compose.PatchFile, ...], reply_to: str | None = None
               ) -> tuple[compose.Outgoing, ...]:
    mail = compose.SeriesMail(SENDER, ("xen-devel@lists.xenproject.org",),
                              ("Bob <bob@example.org>",), reply_to, DATE)
    return compose.compose_series(files, FOUND, compose.message_ids(files, SENDER, DATE), mail)


def test_compose_threads_addresses_and_encodings(tmp_path: Path) -> None:
    out = compose_it(files_of(write_series(tmp_path / "s")))
    cover, p1, p2 = out
    assert cover.in_reply_to is None and cover.references == ()
    assert (p1.in_reply_to, p1.references) == (cover.message_id, (cover.message_id,))
    assert (p2.in_reply_to, p2.references) == (cover.message_id, (cover.message_id,))
    assert p1.to == ("xen-devel@lists.xenproject.org",)
    # One mailbox once, whatever the spelling of the name; Cc: from the patch file kept.
    assert p1.cc == ("Bob <bob@example.org>", "Jan Beulich <jbeulich@suse.com>",
                     "Carol <carol@example.org>")
    assert p2.cc == ("Bob <bob@example.org>", "Wei Liu <wl@xen.org>",
                     "Anthony PERARD <anthony.perard@citrix.com>")
    assert set(cover.cc) == set(p1.cc) | set(p2.cc)
    # Dates one second apart keep the order in mail readers.
    assert [m.message["Date"] for m in out] == [
        "Fri, 27 Nov 2026 12:00:00 +0000", "Fri, 27 Nov 2026 12:00:01 +0000",
        "Fri, 27 Nov 2026 12:00:02 +0000"]
    # A patch by someone else keeps its author in the body (git send-email does this).
    body2 = p2.message.get_content()
    assert body2.startswith("From: Roger Pau Monné <roger.pau@citrix.com>\n\n")
    assert p2.message["Content-Transfer-Encoding"] == "quoted-printable"  # a 1200-byte line
    assert p1.message["Content-Transfer-Encoding"] == "7bit"
    assert cover.message["Content-Transfer-Encoding"] == "8bit"  # "Monné" in the shortlog
    assert "x" * 1200 in body2


def test_no_cover_and_in_reply_to(tmp_path: Path) -> None:
    v1 = "<v1-cover@example.org>"
    p1, p2 = compose_it(files_of(write_series(tmp_path / "s", cover=False)), v1)
    assert (p1.in_reply_to, p1.references) == (v1, (v1,))
    assert (p2.in_reply_to, p2.references) == (p1.message_id, (v1, p1.message_id))


def test_message_ids_are_stable_and_distinct(tmp_path: Path) -> None:
    files = files_of(write_series(tmp_path / "s"))
    ids = compose.message_ids(files, SENDER, DATE)
    assert ids == compose.message_ids(files, SENDER, DATE)
    assert len(set(ids.values())) == 3 and all(i.endswith("@example.org>") for i in ids.values())
    assert ids != compose.message_ids(files, "Other <o@example.org>", DATE)


def test_mbox_round_trip_keeps_from_lines(tmp_path: Path) -> None:
    out = compose_it(files_of(write_series(tmp_path / "s")))
    path = tmp_path / "x.mbox"
    path.write_bytes(compose.mbox(out))
    assert b'\n>From here on, a line that starts with "From "' in path.read_bytes()
    msgs = list(mailbox.mbox(str(path)))
    assert [m["Message-ID"] for m in msgs] == [m.message_id for m in out]


@pytest.mark.parametrize("text, ok", [
    ("a@b.org", True), ("Foo Bar <foo@bar.org>", True), ('"Smith, J." <j@s.org>', True),
    ("not an address", False), ("a@b.org, c@d.org", False), ("<>", False), ("x@", False),
    ("a@b.org\nBcc: evil@x.org", False), ("", False),
])
def test_check_address(text: str, ok: bool) -> None:
    if ok:
        assert "@" in compose.check_address("--to", text)
    else:
        with pytest.raises(UsageError, match="not an e-mail address"):
            compose.check_address("--to", text)


@pytest.mark.parametrize("name, text, message", [
    ("0001-x.patch", "no headers at all\n", "no From:/Subject:"),
    ("0001-x.patch", "From: a@b.org\nSubject: x\n\nwords only\n", "no diff in it"),
    ("0000-cover-letter.patch", "From: a@b.org\nSubject: [PATCH 0/1] *** SUBJECT HERE ***\n\nb\n",
     "SUBJECT HERE"),
    ("notes.patch", "From: a@b.org\nSubject: x\n\n", "not a series file"),
])
def test_bad_patch_files(name: str, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        compose.parse_patch_file(name, text.encode())


def test_series_numbers_must_be_complete(tmp_path: Path) -> None:
    d = write_series(tmp_path / "s")
    (d / "v2-0001-xen-public-a-comment.patch").unlink()
    with pytest.raises(InputError, match=r"patch numbers \[2\] are not 1..1"):
        files_of(d)


def test_state_round_trip_and_reconcile(tmp_path: Path) -> None:
    state = st.new_state({"a.patch": "<a@x>", "b.patch": "<b@x>"}, DATE, None)
    assert st.load_state(tmp_path) is None
    st.save_state(tmp_path, state.with_sent("a.patch", DATE))
    loaded = st.load_state(tmp_path)
    assert loaded is not None and dict(loaded.sent) == {"a.patch": DATE.isoformat()}
    assert dict(loaded.message_ids) == dict(state.message_ids) and loaded.date == DATE
    assert st.reconcile(loaded, ["a.patch", "b.patch"], None) is loaded
    with pytest.raises(InputError, match="changed since it was partly sent"):
        st.reconcile(loaded, ["a.patch", "b.patch", "c.patch"], None)
    with pytest.raises(InputError, match="partly sent replying to None"):
        st.reconcile(loaded, ["a.patch", "b.patch"], "<other@x>")
    (tmp_path / st.STATE_FILE).write_text("{not json")
    with pytest.raises(InputError, match="not a send record"):
        st.load_state(tmp_path)


def _config(tmp_path: Path, text: str = "") -> object:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(str(path), env={})


def test_smtp_settings_precedence(tmp_path: Path) -> None:
    git = {"sendemail.smtpserver": "mail.example.org", "sendemail.smtpuser": "ada",
           "sendemail.smtppass": "from-git", "sendemail.smtpencryption": "ssl"}
    s = smtp.settings_from(_config(tmp_path), git, {})  # type: ignore[arg-type]
    assert (s.server, s.port, s.encryption, s.user, s.password) == (
        "mail.example.org", 465, "ssl", "ada", "from-git")
    assert "from-git" not in repr(s)
    s = smtp.settings_from(_config(tmp_path, '[smtp]\nserver = "relay.example.org"\nport = 2525\n'
                                   'encryption = "tls"\n'), git,  # type: ignore[arg-type]
                           {"XENPATCH_SMTP_PASSWORD": "from-env"})
    assert (s.server, s.port, s.encryption, s.password) == ("relay.example.org", 2525, "tls",
                                                            "from-env")
    with pytest.raises(ConfigError, match="no SMTP server"):
        smtp.settings_from(_config(tmp_path), {}, {})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="SMTP user ada has no password"):
        smtp.settings_from(_config(tmp_path), {"sendemail.smtpserver": "m",  # type: ignore[arg-type]
                                               "sendemail.smtpuser": "ada"}, {})
    with pytest.raises(ConfigError, match="not a port number"):
        smtp.settings_from(_config(tmp_path), {"sendemail.smtpserver": "m",  # type: ignore[arg-type]
                                               "sendemail.smtpserverport": "smtp"}, {})


def test_cannot_connect_is_exit_3(tmp_path: Path) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens once it is closed
    settings = smtp.SmtpSettings("127.0.0.1", port, "tls", "", "", None)
    with pytest.raises(smtp.EnvironmentFailure, match=f"SMTP 127.0.0.1:{port}: cannot connect"):
        smtp.connect(settings)


def _golden(name: str, data: str, regen: bool) -> None:
    check_golden(GOLDEN / name, data, regen)


def test_dry_run_golden(tmp_path: Path, xen_tree: Path, regen_golden: bool,
                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The dry run of a hand-written v2 series on the real tree's MAINTAINERS, byte for byte."""
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Ada Tester\n\temail = ada@example.org\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    d = write_series(tmp_path / "series")
    config = tmp_path / "config.toml"
    config.write_text(f'[tree]\npath = "{xen_tree}"\n[series]\ndate = "2026-11-27T12:00:00+00:00"\n')
    mbox = tmp_path / "dry.mbox"
    code = main(["--config", str(config), "send", str(d), "--format", "json", "--mbox", str(mbox),
                 "--in-reply-to", "v1-cover@example.org", "--cc", "Bob <bob@example.org>"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    doc = json.loads(out)
    doc["summary"] = doc["summary"].replace(str(mbox), "MBOX")
    _golden("dry-run.json", json.dumps(doc, indent=2, sort_keys=True) + "\n", regen_golden)
    _golden("dry-run.mbox", mbox.read_bytes().decode("utf-8"), regen_golden)
    msgs = [BytesParser(policy=policy.default).parsebytes(m.as_bytes())
            for m in mailbox.mbox(str(mbox))]
    # The real MAINTAINERS: xen.h is THE REST's, libxl_dom.c is LIBS' and TOOLSTACK's.
    assert "Andrew Cooper <andrew.cooper3@citrix.com>" in str(msgs[1]["Cc"])
    assert "George Dunlap" not in str(msgs[2]["Cc"])
    assert msgs[0]["In-Reply-To"] == "<v1-cover@example.org>"
    assert not (d / st.STATE_FILE).exists()
