"""`xenpatch send` against a real SMTP server on 127.0.0.1 (aiosmtpd: STARTTLS, AUTH, a
self-signed certificate), settings from git config, and git send-email as the reference."""

from __future__ import annotations

import email
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from xenpatch.cli import main

USER, PASSWORD = "ada", "s3cret-Pa55word-xyzzy"
LIST = "xen-devel@lists.xenproject.org"
SENDER = "Ada Tester <ada@example.org>"
DATE = "Fri, 27 Nov 2026 12:00:00 +0000"


# --- the server ------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the server accepted, and a switch to drop the connection at the Nth MAIL FROM."""

    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    drop_at: int | None = None
    failed_logins: int = 0
    logins: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.drop_at is not None and len(self.received) == self.drop_at:
            self.drop_at = None
            session.transport.close()
            return "421 closing the connection"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        msg = email.message_from_bytes(envelope.original_content, policy=policy.default)
        self.received.append(msg)  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
              and auth_data.password == PASSWORD.encode())
        self.failed_logins += not ok
        self.logins += ok
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by the openssl CLI."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"),
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(certificate: tuple[Path, Path]) -> Iterator[tuple[Mailbox, int]]:
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certificate[0]), str(certificate[1]))
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=ctx,
                            require_starttls=True, auth_required=True, auth_require_tls=True,
                            authenticator=box.authenticate)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path],
               server: tuple[Mailbox, int]) -> Path:
    """sendemail.* in a private global git config (GIT_CONFIG_GLOBAL), as a user has it."""
    path = tmp_path / "gitconfig"
    path.write_text(f"""[user]
\tname = Ada Tester
\temail = ada@example.org
[sendemail]
\tsmtpServer = 127.0.0.1
\tsmtpServerPort = {server[1]}
\tsmtpEncryption = tls
\tsmtpUser = {USER}
\tsmtpPass = {PASSWORD}
\tsmtpSslCertPath = {certificate[0]}
""")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("XENPATCH_SMTP_PASSWORD", raising=False)
    return path


# --- the series ------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "Ada Tester", "GIT_AUTHOR_EMAIL": "ada@example.org",
           "GIT_COMMITTER_NAME": "Ada Tester", "GIT_COMMITTER_EMAIL": "ada@example.org",
           "GIT_AUTHOR_DATE": "2026-11-27T12:00:00Z", "GIT_COMMITTER_DATE": "2026-11-27T12:00:00Z",
           "PATH": "/usr/bin:/bin", "HOME": str(repo.parent), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": str(repo.parent / "no-such-gitconfig")}
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {args[0]}: {proc.stderr}"
    return proc.stdout


def _edit(clone: Path, rel: str, old: str, new: str, subject: str) -> None:
    path = clone / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    git(clone, "commit", "-q", "-a", "-s", "-m", subject)


def make_series(clone: Path, out: Path) -> Path:
    """Three real commits on the 4.17.5 tree and `git format-patch --cover-letter`."""
    _edit(clone, "xen/include/public/xen.h", "#define SIF_PM_MASK",
          "#define SIF_HVM_GHCB      (1<<5)  /* Domain is SEV-ES/SNP */\n#define SIF_PM_MASK",
          "xen/public: introduce SIF_HVM_GHCB for SEV-ES/SNP guests\n\nA start-info flag.")
    _edit(clone, "tools/libs/light/libxl_dom.c", "int libxl__build_hvm(",
          "/* The PVH builder sets SIF_HVM_GHCB when asked to. */\nint libxl__build_hvm(",
          "tools/libxl: note the GHCB start-info flag\n\nPlumbing follows.")
    _edit(clone, "docs/misc/pvh.pandoc", " * `cr4`: all bits are cleared.\n",
          " * `cr4`: all bits are cleared.\n\n * SEV-ES/SNP guests see `SIF_HVM_GHCB`.\n",
          "docs/pvh: document SIF_HVM_GHCB\n\nSay what the flag means.")
    git(clone, "format-patch", "-q", "--cover-letter", "-o", str(out), "--subject-prefix=RFC PATCH",
        "HEAD~3..HEAD")
    cover = out / "0000-cover-letter.patch"
    text = cover.read_text(encoding="utf-8")
    cover.write_text(text.replace("*** SUBJECT HERE ***", "Introduce SIF_HVM_GHCB")
                     .replace("*** BLURB HERE ***", "Let SEV-ES/SNP PVH guests use the GHCB."),
                     encoding="utf-8")
    return out


@pytest.fixture
def series(xen_clone: Path, tmp_path: Path) -> Path:
    return make_series(xen_clone, tmp_path / "series")


@pytest.fixture
def config_file(tmp_path: Path, xen_clone: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[tree]\npath = "{xen_clone}"\n[series]\ndate = "{DATE}"\n')
    return path


def run(config_file: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--config", str(config_file), *args])
    out, err = capsys.readouterr()
    return code, out, err


def thread_shape(messages: list[EmailMessage]) -> dict[str, str | None]:
    """Subject -> the Subject of the message it replies to (None for the root)."""
    by_id = {m["Message-ID"]: str(m["Subject"]) for m in messages}
    return {str(m["Subject"]): by_id.get(m["In-Reply-To"], m["In-Reply-To"]) for m in messages}


# --- tests -----------------------------------------------------------------------------

THE_REST = {"andrew.cooper3@citrix.com", "george.dunlap@citrix.com", "jbeulich@suse.com",
            "julien@xen.org", "sstabellini@kernel.org", "wl@xen.org"}
LIBXL = {"wl@xen.org", "anthony.perard@citrix.com", "jgross@suse.com"}


def _addresses(value: object) -> set[str]:
    return {a for _, a in email.utils.getaddresses([str(value)])} if value else set()


def test_send_threads_and_addresses(series: Path, config_file: Path, git_config: Path,
                                    server: tuple[Mailbox, int],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    box, _ = server
    code, out, err = run(config_file, "send", str(series), "--yes", "--cc", "Bob <bob@example.org>",
                         capsys=capsys)
    assert (code, err) == (0, ""), err
    assert "sent 4 messages" in out
    assert len(box.received) == 4
    cover, *patches = box.received
    assert str(cover["Subject"]) == "[RFC PATCH 0/3] Introduce SIF_HVM_GHCB"
    for m in box.received:
        assert _addresses(m["To"]) == {LIST}  # Xen's rule: the list in To
        assert m["From"] == SENDER and m["Date"]
    # Cc: the maintainers and reviewers of each patch; the cover has the union.
    assert _addresses(patches[0]["Cc"]) == THE_REST | {"bob@example.org"}
    assert _addresses(patches[1]["Cc"]) == LIBXL | {"bob@example.org"}
    assert _addresses(patches[2]["Cc"]) == THE_REST | {"bob@example.org"}
    assert _addresses(cover["Cc"]) == THE_REST | LIBXL | {"bob@example.org"}
    # Threading like git send-email --thread --no-chain-reply-to.
    assert cover["In-Reply-To"] is None and cover["References"] is None
    for p in patches:
        assert p["In-Reply-To"] == cover["Message-ID"] and p["References"] == cover["Message-ID"]
    assert len({m["Message-ID"] for m in box.received}) == 4
    # The envelope reaches every To and Cc address.
    mail_from, rcpts = box.envelopes[1]
    assert mail_from == "ada@example.org"
    assert set(rcpts) == {LIST, "bob@example.org"} | THE_REST
    # The record says all were sent; a rerun sends nothing and says so.
    code, out, err = run(config_file, "send", str(series), "--yes", capsys=capsys)
    assert code == 0 and "nothing to send: all 4 messages were sent before" in out
    assert len(box.received) == 4
    assert box.failed_logins == 0


def test_patches_apply_from_what_the_server_received(series: Path, config_file: Path,
                                                     git_config: Path, xen_tree: Path,
                                                     server: tuple[Mailbox, int], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    box, _ = server
    assert run(config_file, "send", str(series), "--yes", capsys=capsys)[0] == 0
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", "--shared", str(xen_tree), str(fresh)], check=True)
    for m in box.received[1:]:
        data = m.as_bytes(policy=policy.default)
        subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@e.org", "am", "-q"],
                       cwd=fresh, input=data, check=True, capture_output=True)
    assert "SIF_HVM_GHCB" in (fresh / "xen/include/public/xen.h").read_text()
    assert "SIF_HVM_GHCB" in (fresh / "docs/misc/pvh.pandoc").read_text()


def test_in_reply_to_threads_under_v1(series: Path, config_file: Path, git_config: Path,
                                      server: tuple[Mailbox, int],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    box, _ = server
    v1 = "<20261101120000.1234-0-ada@example.org>"
    assert run(config_file, "send", str(series), "--yes", "--in-reply-to", v1,
               capsys=capsys)[0] == 0
    cover, *patches = box.received
    assert cover["In-Reply-To"] == v1 and cover["References"] == v1
    for p in patches:
        assert p["In-Reply-To"] == cover["Message-ID"]
        assert p["References"].split() == [v1, cover["Message-ID"]]


def test_dry_run_sends_nothing_and_writes_an_mbox(series: Path, config_file: Path,
                                                  git_config: Path, server: tuple[Mailbox, int],
                                                  tmp_path: Path, xen_tree: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    box, _ = server
    mbox = tmp_path / "out.mbox"
    code, out, err = run(config_file, "send", str(series), "--mbox", str(mbox), capsys=capsys)
    assert (code, err) == (0, "")
    assert "dry run: nothing sent; 4 messages written to" in out
    assert box.received == [] and not (series / ".xenpatch-send.json").exists()
    msgs = list(__import__("mailbox").mbox(str(mbox)))
    assert [m["Subject"] for m in msgs][0] == "[RFC PATCH 0/3] Introduce SIF_HVM_GHCB"
    # The mbox is what would be sent: git am applies it onto the base.
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", "--shared", str(xen_tree), str(fresh)], check=True)
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@e.org", "am", "-q",
                    "--patch-format=mboxrd", str(mbox)], cwd=fresh, check=False,
                   capture_output=True)
    # The cover letter is no patch: git am stops on it; skip it and go on.
    subprocess.run(["git", "am", "--skip"], cwd=fresh, check=True, capture_output=True)
    log = subprocess.run(["git", "log", "--format=%s", "-3"], cwd=fresh, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert log == ["docs/pvh: document SIF_HVM_GHCB", "tools/libxl: note the GHCB start-info flag",
                   "xen/public: introduce SIF_HVM_GHCB for SEV-ES/SNP guests"]
    # A dry run with the same date gives the same Message-IDs as a real send.
    assert run(config_file, "send", str(series), "--yes", capsys=capsys)[0] == 0
    assert [m["Message-ID"] for m in box.received] == [m["Message-ID"] for m in msgs]


def test_wrong_password_exit_3_and_nothing_recorded(series: Path, config_file: Path,
                                                    git_config: Path, server: tuple[Mailbox, int],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    box, port = server
    monkeypatch.setenv("XENPATCH_SMTP_PASSWORD", "not-the-password-42")
    code, out, err = run(config_file, "send", str(series), "--yes", capsys=capsys)
    assert code == 3
    assert err == f"xenpatch: SMTP 127.0.0.1:{port}: authentication as {USER} failed (535)\n"
    assert box.received == [] and box.failed_logins >= 1  # smtplib tries PLAIN, then LOGIN
    state = (series / ".xenpatch-send.json").read_text()
    assert '"sent": null' in state and '"sent": "' not in state
    assert "not-the-password-42" not in out + err + state and PASSWORD not in out + err + state
    # -v adds the traceback; it holds no credentials either.
    code, out, err = run(config_file, "-v", "send", str(series), "--yes", capsys=capsys)
    assert code == 3 and "Traceback" in err
    assert "not-the-password-42" not in out + err and PASSWORD not in out + err


def test_dropped_connection_then_rerun_sends_the_rest(series: Path, config_file: Path,
                                                      git_config: Path,
                                                      server: tuple[Mailbox, int], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    box, _ = server
    box.drop_at = 2
    mbox = tmp_path / "sent.mbox"
    code, out, err = run(config_file, "send", str(series), "--yes", "--mbox", str(mbox),
                         capsys=capsys)
    assert code == 3
    assert "2 of 4 sent, rerun to send the rest" in err and err.count("\n") == 1
    assert len(box.received) == 2
    first_ids = [m["Message-ID"] for m in box.received]
    code, out, err = run(config_file, "send", str(series), "--yes", capsys=capsys)
    assert (code, err) == (0, "")
    assert "sent 2 messages" in out and "(2 sent before)" in out
    assert len(box.received) == 4
    ids = [m["Message-ID"] for m in box.received]
    assert ids[:2] == first_ids and len(set(ids)) == 4
    # Threading holds across the two runs: the late patches reply to the early cover.
    assert thread_shape(box.received) == {
        "[RFC PATCH 0/3] Introduce SIF_HVM_GHCB": None,
        "[RFC PATCH 1/3] xen/public: introduce SIF_HVM_GHCB for SEV-ES/SNP guests":
            "[RFC PATCH 0/3] Introduce SIF_HVM_GHCB",
        "[RFC PATCH 2/3] tools/libxl: note the GHCB start-info flag":
            "[RFC PATCH 0/3] Introduce SIF_HVM_GHCB",
        "[RFC PATCH 3/3] docs/pvh: document SIF_HVM_GHCB": "[RFC PATCH 0/3] Introduce SIF_HVM_GHCB"}
    for path in (mbox, series / ".xenpatch-send.json"):
        assert PASSWORD not in path.read_text(encoding="utf-8", errors="replace")


def test_batches_reconnect(series: Path, config_file: Path, git_config: Path,
                           server: tuple[Mailbox, int], capsys: pytest.CaptureFixture[str]) -> None:
    box, _ = server
    code, out, err = run(config_file, "send", str(series), "--yes", "--batch", "3", "--pause", "0",
                         capsys=capsys)
    assert (code, err) == (0, "") and len(box.received) == 4
    assert box.logins == 2  # 3 messages, a new session, the 4th


def test_tls_verification_is_real(series: Path, config_file: Path, git_config: Path,
                                  server: tuple[Mailbox, int], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """With the system CAs instead of the test certificate, TLS must fail (exit 3)."""
    box, _ = server
    text = git_config.read_text()
    git_config.write_text("\n".join(line for line in text.splitlines()
                                    if "smtpSslCertPath" not in line) + "\n")
    code, out, err = run(config_file, "send", str(series), "--yes", capsys=capsys)
    assert code == 3 and "TLS certificate not trusted" in err and box.received == []


def test_git_send_email_gives_the_same_threading(series: Path, config_file: Path,
                                                 git_config: Path, server: tuple[Mailbox, int],
                                                 certificate: tuple[Path, Path],
                                                 xen_clone: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    box, port = server
    for reply_to in (None, "<20261101120000.1234-0-ada@example.org>"):
        box.received.clear()
        extra = ["--in-reply-to", reply_to] if reply_to else []
        assert run(config_file, "send", str(series), "--yes", *extra, capsys=capsys)[0] == 0
        ours = thread_shape(box.received)
        (series / ".xenpatch-send.json").unlink()
        box.received.clear()
        proc = subprocess.run(
            ["git", "send-email", f"--to={LIST}", "--smtp-server=127.0.0.1",
             f"--smtp-server-port={port}", "--smtp-encryption=tls",
             f"--smtp-ssl-cert-path={certificate[0]}", f"--smtp-user={USER}", "--confirm=never",
             "--thread", "--no-chain-reply-to", "--suppress-cc=all", "--quiet", *extra,
             *sorted(str(p) for p in series.glob("*.patch"))],
            cwd=xen_clone, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        theirs = thread_shape(box.received)
        assert ours == theirs
        assert len(ours) == 4


BAD = [
    (["--to", "not an address"], "--to 'not an address': not an e-mail address"),
    (["--cc", "a@b.org, c@d.org"], "--cc 'a@b.org, c@d.org': not an e-mail address"),
    (["--in-reply-to", "no id here"], "--in-reply-to 'no id here': not a Message-ID"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_arguments(series: Path, config_file: Path, git_config: Path, extra: list[str],
                       message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(config_file, "send", str(series), "--yes", *extra, capsys=capsys)
    assert (code, out) == (2, "") and err == f"xenpatch: {message}\n"


def test_bad_series(tmp_path: Path, config_file: Path, git_config: Path, series: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello\n")
    code, out, err = run(config_file, "send", str(empty), capsys=capsys)
    assert code == 2 and err == f"xenpatch: {empty}: no series (no NNNN-*.patch patch files)\n"
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    (bogus / "0001-hello.patch").write_text("From: A <a@b.org>\nSubject: hi\n\njust words\n")
    code, out, err = run(config_file, "send", str(bogus), capsys=capsys)
    assert code == 2 and err == "xenpatch: 0001-hello.patch: not a patch (no diff in it)\n"
    (bogus / "0001-hello.patch").write_text("just words, no mail headers\n")
    code, out, err = run(config_file, "send", str(bogus), capsys=capsys)
    assert code == 2 and "0001-hello.patch: not a patch (no From:/Subject: mail header)" in err
    code, out, err = run(config_file, "send", str(tmp_path / "missing"), capsys=capsys)
    assert code == 2 and "missing: not a directory" in err


def test_no_smtp_settings_with_yes(series: Path, config_file: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("[user]\n\tname = Ada Tester\n\temail = ada@example.org\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("XENPATCH_SMTP_SERVER", "XENPATCH_SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = run(config_file, "send", str(series), "--yes", capsys=capsys)
    assert code == 2 and err.startswith("xenpatch: no SMTP server:") and err.count("\n") == 1
    assert not (series / ".xenpatch-send.json").exists()
