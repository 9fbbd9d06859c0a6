"""The watch loop's rules on a real public-inbox: an incomplete series waits (then is reviewed as
incomplete), a RESEND is not a new version, SIGTERM ends the loop after the current review."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pinbox
import pytest
from watchkit import bare_tree, commit_edit, config_file, git, series_mails

from xenpatch.cli import main
from xenpatch.review.state import State

pytestmark = pytest.mark.skipif(not pinbox.available(), reason="Debian's public-inbox is needed")


@pytest.fixture
def world(xen_tree: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    tree = bare_tree(xen_tree, tmp_path / "tree.git")
    base = git(tree, "rev-parse", "HEAD").strip()
    one = commit_edit(tree, base, {"README": ("Xen", "The Xen")},
                      "README: say The Xen\n\nSigned-off-by: Ada Tester <ada@example.org>")
    two = commit_edit(tree, one, {"COPYING": ("GNU", "The GNU")},
                      "COPYING: say The GNU\n\nSigned-off-by: Ada Tester <ada@example.org>")
    inbox = pinbox.PublicInbox(tmp_path / "pi")
    config = config_file(tmp_path, tree, tmp_path / "abicache")
    args = ["--config", str(config), "watch", "--source", str(inbox.inbox_dir),
            "--out", str(tmp_path / "out"), "--state", str(tmp_path / "s.sqlite")]
    return tree, base, two, inbox, args


def test_incomplete_waits_then_is_reviewed_as_such(world, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    tree, base, tip, inbox, args = world
    cover, first, second = series_mails(tree, base, tip, cover="Wording")
    inbox.add(cover)
    inbox.add(first)
    assert main(["-v", *args, "--once"]) == 0
    err = capsys.readouterr().err
    assert "0 reviewed" in err and "waiting for patches [2] of 'Wording' v1" in err
    assert [r.status for r in State(tmp_path / "s.sqlite").all_series()] == ["pending"]
    assert main([*args, "--once", "--wait", "0"]) == 1  # series-incomplete is an error
    err = capsys.readouterr().err
    assert "1 reviewed" in err
    doc = next((tmp_path / "out").glob("*.json")).read_text()
    assert '"rule": "series-incomplete"' in doc
    inbox.add(second)  # too late: that version was reviewed (as incomplete) once
    assert main([*args, "--once"]) == 0
    assert "0 reviewed" in capsys.readouterr().err


def test_resend_is_not_a_new_version(world, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    tree, base, tip, inbox, args = world
    for m in series_mails(tree, base, tip, cover="Wording"):
        inbox.add(m)
    assert main([*args, "--once"]) == 0
    assert "1 reviewed" in capsys.readouterr().err
    for m in series_mails(tree, base, tip, cover="Wording", resend=True):
        inbox.add(m)
    assert main([*args, "--once"]) == 0
    err = capsys.readouterr().err
    assert "3 new messages" in err and "0 reviewed" in err


def test_sigterm_ends_after_the_current_review(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tree, base, tip, inbox, args = world
    for m in series_mails(tree, base, tip, cover="Wording"):
        inbox.add(m)
    proc = subprocess.Popen([sys.executable, "-m", "xenpatch.cli", *args, "--interval", "600"],
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if "INFO reviewing 'Wording'" in line:
            proc.send_signal(signal.SIGTERM)  # in the middle of the review
            break
    _, rest = proc.communicate(timeout=300)
    text = "".join(seen) + rest
    assert proc.returncode == 0, text
    assert "INFO reviewed 'Wording' v1" in text and "SIGTERM: stopped after the current review" in text
    assert [r.status for r in State(tmp_path / "s.sqlite").all_series()] == ["reviewed"]
