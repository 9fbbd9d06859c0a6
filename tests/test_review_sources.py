"""Where a reviewed series comes from: files, maildirs, format-patch output, a real
public-inbox server and its git mirror, and hostile inputs (bombs, garbage)."""

from __future__ import annotations

import gzip
import http.server
import mailbox
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pinbox import PublicInbox, available, free_port

from xenpatch.errors import EnvironmentFailure, InputError, UsageError
from xenpatch.mail import archive
from xenpatch.review import mbox
from xenpatch.review.series import assemble
from xenpatch.review.sources import Limits, load

DATA = Path(__file__).parent / "data" / "review"
THREAD = DATA / "v1-v2.mbox"
QUICK = Limits(http_timeout=5, http_retries=1)


def _load(source: str | Path, **kw) -> list:
    return load(str(source), archive=kw.pop("archive", None), message_id=kw.pop("message_id", None),
                limits=kw.pop("limits", QUICK))


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- files ---------------------------------------------------------------------------

def test_gzip_mbox_file_and_gzip_bomb(tmp_path: Path) -> None:
    gz = tmp_path / "t.mbox.gz"
    gz.write_bytes(gzip.compress(THREAD.read_bytes()))
    assert assemble(_load(gz)).version == 2
    bomb = tmp_path / "bomb.mbox.gz"
    bomb.write_bytes(gzip.compress(b"From x@y Mon Dec  1 10:00:00 2025\n" + b"\0" * (8 << 20)))
    assert bomb.stat().st_size < 64 * 1024
    with pytest.raises(InputError) as e:
        _load(bomb, limits=Limits(max_decompressed_bytes=1 << 20))
    assert _one_line(e) == (f"{bomb}: decompresses to more than 1048576 bytes "
                            "([review].max_decompressed_bytes)")


@pytest.mark.parametrize("name, fragment", [
    ("malformed.mbox", "malformed.mbox: neither an mbox (no 'From ' line at the start) nor a "
                       "mail (no header line at the start)"),
    ("no-headers.mbox", "no-headers.mbox: not a mail (it does not start with a header line)"),
])
def test_malformed_mbox_is_one_line(name: str, fragment: str) -> None:
    with pytest.raises(InputError) as e:
        _load(DATA / name)
    assert fragment in _one_line(e) and name in str(e.value)


def test_size_and_count_limits(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"more than 3 messages \(\[review\].max_messages\)"):
        _load(THREAD, limits=Limits(max_messages=3))
    with pytest.raises(InputError, match=r"message 1 is larger than 100 bytes"):
        _load(THREAD, limits=Limits(max_message_bytes=100))
    with pytest.raises(InputError, match="not a regular file"):
        _load("/dev/zero")


def test_unknown_source_and_message_id_without_archive() -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        _load("does/not/exist.mbox")
    with pytest.raises(UsageError, match="needs an archive"):
        _load("<abc@example.org>")


def test_mboxrd_and_mboxo_quoting(tmp_path: Path) -> None:
    body = b"Subject: q\nMessage-ID: <q@x>\n\nFrom here\n>From there\n>>From afar\n"
    rd = mbox.to_mboxrd([body])
    assert b"\n>From here\n>>From there\n>>>From afar\n" in rd
    assert mbox.split_mbox(rd, "rd", max_messages=9, max_message_bytes=999) == [body]
    # mboxo: only "From " was quoted; ">From" lines were written as they were.
    mboxo = b"From a@b Mon Dec  1 10:00:00 2025\nSubject: q\n\n>From here\n>From there\n"
    assert mbox.mbox_format(mboxo) == "mboxo"
    (msg,) = mbox.split_mbox(mboxo, "o", max_messages=9, max_message_bytes=999)
    assert msg.endswith(b"\nFrom here\nFrom there\n")


def test_maildir(tmp_path: Path) -> None:
    md = mailbox.Maildir(tmp_path / "md", create=True)
    for raw in mbox.split_mbox(THREAD.read_bytes(), "t", max_messages=99, max_message_bytes=1 << 20):
        md.add(raw)
    mails = _load(tmp_path / "md")
    assert len(mails) == 7
    series = assemble(mails)
    assert (series.version, [p.number for p in series.patches]) == (2, [1, 2])


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": str(cwd),
           "GIT_AUTHOR_NAME": "Ann Dev", "GIT_AUTHOR_EMAIL": "ann@example.org",
           "GIT_COMMITTER_NAME": "Ann Dev", "GIT_COMMITTER_EMAIL": "ann@example.org",
           "GIT_AUTHOR_DATE": "2025-12-01T10:00:00Z", "GIT_COMMITTER_DATE": "2025-12-01T10:00:00Z",
           "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def test_git_format_patch_directory_and_git_am_of_the_raw_mails(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "xen.h").write_text("#define A 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    for n, line in enumerate(["#define B 2\n", "#define C 3\n"], 1):
        with (repo / "xen.h").open("a") as f:
            f.write(line)
        (repo / f"f{n}.c").write_text("From the start\nint x;\n")  # a body line mbox must quote
        _git(repo, "add", ".")
        _git(repo, "commit", "-q", "-s", "-m", f"xen/public: add {line.split()[1]}",
             "-m", "Because.\n\nFixes: 123456789abc (\"base\")")
    out = tmp_path / "out"
    _git(repo, "format-patch", "-q", "--cover-letter", f"--base={base}", "-o", str(out), f"{base}..")
    mails = _load(out)
    series = assemble(mails)
    assert series.cover is not None and series.total == 2 and series.missing == ()
    assert series.base_commit == base
    p1, p2 = series.patches
    assert (p1.summary, p2.summary) == ("xen/public: add B", "xen/public: add C")
    assert p1.trailers == (("Fixes", '123456789abc ("base")'),
                           ("Signed-off-by", "Ann Dev <ann@example.org>"))
    assert p1.files == ("f1.c", "xen.h") and p1.author == "Ann Dev <ann@example.org>"
    assert "+From the start" in p1.diff.splitlines()
    # The raw mails, written as mboxrd, are what git am needs.
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    _git(clone, "checkout", "-q", base)
    (tmp_path / "s.mbox").write_bytes(mbox.to_mboxrd([p.mail.raw for p in series.patches]))
    _git(clone, "am", "-q", "--patch-format=mboxrd", str(tmp_path / "s.mbox"))
    assert (clone / "xen.h").read_text() == (repo / "xen.h").read_text()
    assert (clone / "f2.c").read_text() == "From the start\nint x;\n"


# --- a real public-inbox server -------------------------------------------------------

needs_pi = pytest.mark.skipif(not available(), reason="Debian's public-inbox is not installed")


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicInbox]:
    pi = PublicInbox(tmp_path_factory.mktemp("pinbox"))
    assert pi.add_mbox(THREAD) == 7
    with pi.serving():
        yield pi


@needs_pi
@pytest.mark.parametrize("how", ["bare", "angle", "url", "url-T", "url-mbox"])
def test_thread_over_http(inbox: PublicInbox, how: str) -> None:
    mid = "p1v1@example.org"  # any mail of the thread brings the whole thread
    source = {"bare": mid, "angle": f"<{mid}>", "url": f"{inbox.url}{mid}/",
              "url-T": f"{inbox.url}{mid}/T/#u", "url-mbox": f"{inbox.url}{mid}/t.mbox.gz"}[how]
    mails = _load(source, archive=inbox.url if how in ("bare", "angle") else None)
    assert len(mails) == 7
    series = assemble(mails)
    assert (series.version, series.message_id, series.missing) == (2, "c2@example.org", ())
    assert [m.message_id for m in series.replies] == ["r1@example.org"]


@needs_pi
def test_unknown_message_id_is_an_input_error(inbox: PublicInbox) -> None:
    with pytest.raises(InputError) as e:
        _load("<nothere@example.org>", archive=inbox.url)
    assert "the archive has no message <nothere@example.org> (HTTP 404" in _one_line(e)


@needs_pi
def test_new_atom(inbox: PublicInbox) -> None:
    entries = archive.new_atom(inbox.url, archive.Fetch(timeout=5, retries=0))
    assert {e.message_id for e in entries} == {
        "c1@example.org", "p1v1@example.org", "p2v1@example.org", "r1@example.org",
        "c2@example.org", "p1v2@example.org", "p2v2@example.org"}
    by_id = {e.message_id: e for e in entries}
    assert by_id["p1v2@example.org"].in_reply_to == "c2@example.org"
    assert by_id["p1v2@example.org"].title == "[PATCH v2 1/2] xen/public: add SIF_A"
    assert by_id["c1@example.org"].updated == "2025-12-01T10:00:00Z"


@needs_pi
def test_thread_from_the_inbox_and_from_a_mirror_of_its_epoch(inbox: PublicInbox,
                                                              tmp_path: Path) -> None:
    mirror = tmp_path / "0.git"
    subprocess.run(["git", "clone", "-q", "--mirror", str(inbox.epoch), str(mirror)], check=True,
                   env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                        "PATH": "/usr/bin:/bin"})
    checkout = tmp_path / "checkout"  # a plain clone of the epoch (refs/remotes, a work tree)
    subprocess.run(["git", "clone", "-q", str(inbox.epoch), str(checkout)], check=True,
                   env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                        "PATH": "/usr/bin:/bin"})
    for source in (mirror, checkout, inbox.inbox_dir):
        mails = _load(source, message_id="<r1@example.org>")
        series = assemble(mails)
        assert len(mails) == 7 and series.version == 2 and series.missing == ()
        http = assemble(_load(f"{inbox.url}r1@example.org/"))
        assert [(p.mail.message_id, p.diff) for p in series.patches] == [
            (p.mail.message_id, p.diff) for p in http.patches]
    with pytest.raises(UsageError, match="needs --message-id"):
        _load(mirror)
    with pytest.raises(InputError, match="no message <gone@x> in the mirror"):
        _load(mirror, message_id="gone@x")


@needs_pi
def test_stopped_server_is_an_environment_failure(tmp_path: Path) -> None:
    pi = PublicInbox(tmp_path / "pi")
    pi.add_mbox(DATA / "missing-2of3.mbox")
    with pi.serving() as url:
        assert assemble(_load(f"{url}p31@example.org/")).missing == (2,)
    with pytest.raises(EnvironmentFailure) as e:
        _load(f"{url}p31@example.org/")
    assert _one_line(e) == (f"archive {url}p31@example.org/t.mbox.gz: connection refused "
                            "after 2 tries")


# --- an HTTP server that answers the way proxies and broken servers do ------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    plan: list[tuple[int, dict[str, str], bytes]] = []
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append((self.path, self.headers.get("User-Agent", "")))
        status, headers, body = self.plan.pop(0) if self.plan else (404, {}, b"")
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {"plan": [], "seen": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/list/", handler
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("form", ["content-encoding", "gzip-body", "both"])
def test_both_gzip_forms(server, form: str) -> None:
    url, handler = server
    gz = gzip.compress(THREAD.read_bytes())
    body, headers = {"content-encoding": (gz, {"Content-Encoding": "gzip"}),
                     "gzip-body": (gz, {"Content-Type": "application/gzip"}),
                     "both": (gzip.compress(gz), {"Content-Encoding": "gzip"})}[form]
    handler.plan.append((200, headers, body))
    assert assemble(_load("c1@example.org", archive=url)).version == 2
    path, agent = handler.seen[0]
    assert path == "/list/c1@example.org/t.mbox.gz" and agent.startswith("xenpatch/")


def test_retries_on_5xx_then_raw_fallback(server) -> None:
    url, handler = server
    handler.plan += [(503, {}, b""), (502, {}, b""), (404, {}, b""),
                     (200, {}, THREAD.read_bytes().split(b"\nFrom mboxrd@z")[0])]
    mails = _load("c1@example.org", archive=url, limits=Limits(http_retries=2, http_timeout=5))
    assert [m.message_id for m in mails] == ["c1@example.org"]
    assert [p for p, _ in handler.seen] == ["/list/c1@example.org/t.mbox.gz"] * 3 + [
        "/list/c1@example.org/raw"]


def test_5xx_after_the_retries_and_a_bomb_over_http(server) -> None:
    url, handler = server
    handler.plan += [(500, {}, b"")] * 2
    with pytest.raises(EnvironmentFailure) as e:
        _load("c1@example.org", archive=url)
    assert _one_line(e) == f"archive {url}c1@example.org/t.mbox.gz: HTTP 500 after 2 tries"
    handler.plan.append((200, {"Content-Encoding": "gzip"}, gzip.compress(b"\0" * (4 << 20))))
    with pytest.raises(InputError) as e:
        _load("c1@example.org", archive=url, limits=Limits(max_decompressed_bytes=1 << 20))
    assert "decompresses to more than 1048576 bytes" in _one_line(e)


def test_message_id_forms_and_limits_from_config(server, monkeypatch) -> None:
    url, handler = server
    handler.plan.append((200, {}, THREAD.read_bytes()))
    _load("<2025/12/01.abc@host.example>", archive=url)
    assert handler.seen[0][0] == "/list/2025%2F12%2F01.abc@host.example/t.mbox.gz"
    with pytest.raises(InputError, match="no such file or directory"):
        _load("some/dir/a@b")  # a path, not a Message-ID
    from xenpatch.config import load_config
    monkeypatch.chdir(Path(__file__).parent)  # no config.toml of the checkout's directory
    config = load_config(env={"XENPATCH_REVIEW_MAX_PATCHES": "7", "XENPATCH_REVIEW_HTTP_TIMEOUT": "9"})
    limits = Limits.from_config(config)
    assert (limits.max_patches, limits.http_timeout, limits.max_messages) == (7, 9, 2000)


def test_a_symlink_in_a_mail_directory_is_refused(tmp_path: Path) -> None:
    md = mailbox.Maildir(tmp_path / "md", create=True)
    md.add(THREAD.read_bytes().split(b"\nFrom mboxrd@z")[0].split(b"\n", 1)[1])
    (tmp_path / "md" / "cur" / "2000.x:2,S").symlink_to("/etc/passwd")
    with pytest.raises(InputError) as e:
        _load(tmp_path / "md")
    assert _one_line(e).endswith("a symbolic link in a mail directory; refused")
    assert "/bin/" not in str(e.value)  # no line of the file it points to
    patches = tmp_path / "p"
    patches.mkdir()
    (patches / "0001-x.patch").symlink_to("/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        _load(patches)


class _Stalling(http.server.BaseHTTPRequestHandler):
    """Promises 1000 bytes, sends 6, then stalls (/stall/) or hangs up (/drop/)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"From x")
        self.wfile.flush()
        if self.path.startswith("/stall/"):
            time.sleep(2)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("how, reason", [("stall", "read timed out"),
                                         ("drop", "connection broken while reading the answer")])
def test_a_body_that_stalls_or_breaks_is_an_environment_failure(how: str, reason: str) -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Stalling)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{how}/"
        with pytest.raises(EnvironmentFailure) as e:
            _load("m@x", archive=url, limits=Limits(http_timeout=1, http_retries=0))
        assert _one_line(e) == f"archive {url}m@x/t.mbox.gz: {reason}"
    finally:
        httpd.shutdown()
        httpd.server_close()
