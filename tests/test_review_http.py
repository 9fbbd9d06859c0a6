"""`xenpatch review` of a series held by a real public-inbox (Debian's public-inbox-httpd on 127.0.0.1):
by Message-ID, by thread URL, from a `git clone --mirror` of its epoch; the server stopped is exit 3."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pinbox
import pytest
from reviewkit import chain, format_patches, replace_once, run_review, thread

XEN_H = "xen/include/public/xen.h"
SIF_ANCHOR = "                                   /* P->M making the 3 level tree obsolete? */\n"

pytestmark = pytest.mark.skipif(not pinbox.available(), reason="Debian's public-inbox is not installed")


@pytest.fixture(scope="module")
def served(xen_tree: Path, tmp_path_factory: pytest.TempPathFactory):
    """A two-patch series with a cover letter (patch 1 takes a used SIF_ bit) in an inbox."""
    root = tmp_path_factory.mktemp("review-http")
    repo = root / "xen.git"
    subprocess.run(["git", "clone", "-q", "--bare", "--shared", str(xen_tree), str(repo)], check=True)
    shas = chain(repo, "base", [
        dict(edits={XEN_H: replace_once(SIF_ANCHOR, SIF_ANCHOR + "#define SIF_TEST_FLAG     (1<<4)\n")},
             subject="xen/public: add SIF_TEST_FLAG"),
        dict(edits={"xen/common/kernel.c": lambda t: t + "\n/* SIF_TEST_FLAG */\n"},
             subject="xen/common: mention SIF_TEST_FLAG"),
    ])
    files = format_patches(repo, "base", shas[-1], root / "out", cover="Test flag\n\nTwo patches.")
    (root / "thread.mbox").write_bytes(thread(files, "http"))
    inbox = pinbox.PublicInbox(root / "pi")
    assert inbox.add_mbox(root / "thread.mbox") == 3
    cfg = root / "config.toml"
    cfg.write_text(f'[tree]\npath = "{repo}"\nbase = "base"\n'
                   '[identity]\nname = "Bot"\nemail = "bot@example.org"\n'
                   '[review]\nhttp_timeout = 5\nhttp_retries = 1\n')
    env = {"XENPATCH_CONFIG": str(cfg), "XENPATCH_ABI_CACHE": str(root / "abicache")}
    with inbox.serving() as url:
        yield inbox, url, env, root


def _check(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["series"]["message_id"] == "http.0@example.org"
    assert doc["series"]["patches"] == 2 and doc["series"]["applied"] == [1, 2]
    hits = [f for f in doc["findings"] if f["rule"] == "abi-bit-collision"]
    assert [(f["severity"], f["patch"], f["file"], f["line"]) for f in hits] == \
        [("error", 1, XEN_H, 876)]
    return doc


def test_by_message_id(served, tmp_path: Path) -> None:
    _, url, env, _ = served
    _check(run_review(["<http.1@example.org>", "--archive", url, "--format", "json"], tmp_path, env))
    proc = run_review(["<not-there@example.org>", "--archive", url], tmp_path, env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_by_thread_url(served, tmp_path: Path) -> None:
    _, url, env, _ = served
    _check(run_review([f"{url}http.2@example.org/T/", "--format", "json"], tmp_path, env))


def test_email_reply_by_message_id(served, tmp_path: Path) -> None:
    _, url, env, _ = served
    proc = run_review(["http.0@example.org", "--archive", url, "--format", "email"], tmp_path, env)
    assert proc.returncode == 1, proc.stderr
    assert "In-Reply-To: <http.1@example.org>" in proc.stdout
    assert f"Reproduce: xenpatch review '<http.0@example.org>' --archive {url}" in proc.stdout


def test_from_a_mirror_of_the_epoch(served, tmp_path: Path) -> None:
    inbox, _, env, _ = served
    mirror = tmp_path / "0.git"
    subprocess.run(["git", "clone", "-q", "--mirror", str(inbox.epoch), str(mirror)], check=True)
    _check(run_review([str(mirror), "--message-id", "http.2@example.org", "--format", "json"],
                      tmp_path, env))


def test_server_stopped_is_exit_3(served, tmp_path: Path) -> None:
    inbox, url, env, _ = served
    inbox.stop()
    try:
        proc = run_review(["<http.1@example.org>", "--archive", url], tmp_path, env)
        assert proc.returncode == 3, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "127.0.0.1" in lines[0] and "Traceback" not in proc.stderr
        proc = run_review(["<nobody@example.org>", "--archive", url], tmp_path, env)
        assert proc.returncode == 3
    finally:
        inbox.start()
