"""Bad traffic for `xenpatch watch` (issue 8, acceptance 4) on a real public-inbox: a malformed
message, a thread without patches, a 50 MB message, the archive going away in the middle of a
pass -- one log line each, the loop goes on, and --once exits 0, or 3 when the archive failed."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pinbox
import pytest
from watchkit import bare_tree, commit_edit, config_file, git, message_id, series_mails

from xenpatch.cli import main

pytestmark = pytest.mark.skipif(not pinbox.available(), reason="Debian's public-inbox is needed")

QUESTION = b"""From: Carol Asker <carol@example.org>
To: xen-devel@lists.xenproject.org
Subject: Which SIF_ bits are free?
Message-ID: <question-1@example.org>
Date: Fri, 27 Nov 2026 12:00:00 +0000

Is bit 5 of SIF_ taken by anything in flight?
"""


def _huge() -> bytes:
    line = b"+ this line is part of a fifty megabyte patch that nobody should review\n"
    body = line * (50 * 1024 * 1024 // len(line) + 1)
    return (b"From: Dan Big <dan@example.org>\nTo: xen-devel@lists.xenproject.org\n"
            b"Subject: [PATCH] huge: a 50 MB patch\nMessage-ID: <huge-1@example.org>\n"
            b"Date: Fri, 27 Nov 2026 12:00:00 +0000\n\n" + body)


def _inject_malformed(epoch: Path) -> None:
    """A commit whose message blob is not a mail (a damaged or hostile archive)."""
    env_home = epoch.parent
    blob = git(epoch, "hash-object", "-w", "--stdin", data=b"\x00\x01 not a mail at all\n").strip()
    tree = git(epoch, "mktree", data=f"100644 blob {blob}\tm\n".encode()).strip()
    head = git(epoch, "rev-parse", "HEAD").strip()
    commit = git(epoch, "commit-tree", tree, "-p", head, "-m", "garbage").strip()
    git(epoch, "update-ref", "HEAD", commit)
    del env_home


@pytest.fixture
def world(xen_tree: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    tree = bare_tree(xen_tree, tmp_path / "tree.git")
    base = git(tree, "rev-parse", "HEAD").strip()
    inbox = pinbox.PublicInbox(tmp_path / "pi")
    one = series_mails(tree, base, commit_edit(tree, base, {"README": ("Xen", "The Xen")},
                       "README: say The Xen\n\nSigned-off-by: Ada Tester <ada@example.org>"))
    two = series_mails(tree, base, commit_edit(tree, base, {"COPYING": ("GNU", "The GNU")},
                       "COPYING: say The GNU\n\nSigned-off-by: Ada Tester <ada@example.org>"))
    for m in one + [QUESTION, _huge()] + two:
        inbox.add(m)
    return tree, inbox, config_file(tmp_path, tree, tmp_path / "abicache"), one, two


def _subjects(out: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["series"]["subject"] for p in out.glob("*.json"))


def test_bad_messages_on_a_mirror(world, tmp_path: Path,  # type: ignore[no-untyped-def]
                                  capsys: pytest.CaptureFixture[str]) -> None:
    tree, inbox, config, one, two = world
    _inject_malformed(inbox.epoch)
    mirror = tmp_path / "mirror"
    subprocess.run(["git", "clone", "-q", "--mirror", str(inbox.epoch), str(mirror)], check=True)
    code = main(["--config", str(config), "watch", "--once", "--source", str(mirror),
                 "--out", str(tmp_path / "out"), "--state", str(tmp_path / "s.sqlite")])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = err.splitlines()
    big = [x for x in lines if "WARNING skipped" in x and "larger than 4194304" in x]
    bad = [x for x in lines if "WARNING skipped" in x and "not a mail" in x]
    chat = [x for x in lines if "not reviewed:" in x and "Which SIF_ bits are free?" in x]
    assert len(big) == 1 and len(bad) == 1 and len(chat) == 1, err
    assert "Traceback" not in err
    assert _subjects(tmp_path / "out") == ["COPYING: say The GNU", "README: say The Xen"]
    assert "3 new messages, 2 skipped, 2 reviewed" in err  # 2 patches + the question


class _StopOnFirstSeries(logging.Handler):
    """Stops the archive when the watcher has taken its first series: the archive goes
    away in the middle of a pass."""

    def __init__(self, inbox: pinbox.PublicInbox) -> None:
        super().__init__()
        self.inbox, self.done = inbox, False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.done and record.getMessage().startswith("new series:"):
            self.done = True
            self.inbox.stop()


def test_archive_going_away_mid_pass(world, tmp_path: Path,  # type: ignore[no-untyped-def]
                                     capsys: pytest.CaptureFixture[str]) -> None:
    tree, inbox, config, one, two = world
    args = ["--config", str(config), "watch", "--once", "--source", inbox.url,
            "--out", str(tmp_path / "out"), "--state", str(tmp_path / "s.sqlite")]
    hook = _StopOnFirstSeries(inbox)
    logging.getLogger("xenpatch.watch").addHandler(hook)
    try:
        inbox.start()
        code = main(args)
    finally:
        logging.getLogger("xenpatch.watch").removeHandler(hook)
        inbox.stop()
    err = capsys.readouterr().err
    assert code == 3, err  # never "no new mail"
    down = [x for x in err.splitlines() if "ERROR archive down:" in x]
    assert len(down) == 1 and "connection refused after 4 tries" in down[0], err
    assert _subjects(tmp_path / "out") == ["README: say The Xen"]  # taken before it went
    # Back up: the next pass reads what the failed one could not, and reviews it once.
    with inbox.serving():
        code = main(args)
    err = capsys.readouterr().err
    assert code == 0, err
    assert _subjects(tmp_path / "out") == ["COPYING: say The GNU", "README: say The Xen"]
    big = [x for x in err.splitlines() if "WARNING skipped" in x and "huge-1@example.org" in x]
    assert len(big) == 1, err
    assert err.count("reviewed '") == 1 and message_id(two[0]) in err
    # The down archive is an environment failure, not a finding against any patch.
    for p in (tmp_path / "out").glob("*.json"):
        assert "archive" not in json.dumps(json.loads(p.read_text())["findings"])
