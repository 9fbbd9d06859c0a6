"""Restart safety of `xenpatch watch --send` (issue 8, acceptance 3): the watcher is SIGKILLed in
the middle of a batch at several points; the rerun reviews each series exactly once in total and
each reply reaches the real SMTP server (aiosmtpd on 127.0.0.1) once.  The server plays the list:
what it accepts it delivers into the real public-inbox the bot watches, so a reply whose
acceptance the bot did not get to record is found there by its Message-ID."""

from __future__ import annotations

import email
from collections import Counter
from email import policy
from pathlib import Path

import pinbox
import pytest
from aiosmtpd.controller import Controller
from watchkit import bare_tree, commit_edit, config_file, git, run_watch, series_mails

from xenpatch.review.state import State

pytestmark = pytest.mark.skipif(not pinbox.available(), reason="Debian's public-inbox is needed")


class ListServer:
    """An SMTP server that counts what it accepts and delivers it into the inbox."""

    def __init__(self, inbox: pinbox.PublicInbox) -> None:
        self.inbox = inbox
        self.ids: Counter[str] = Counter()
        self.errors: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        msg = email.message_from_bytes(envelope.original_content, policy=policy.default)
        try:
            self.inbox.add(envelope.original_content)
        except Exception as e:  # noqa: BLE001 -- the test reads it
            self.errors.append(repr(e) + getattr(e, "stderr", b"").decode(errors="replace"))
            return "451 cannot deliver"
        self.ids[str(msg["Message-ID"])] += 1
        return "250 Message accepted"


def _stale_series(tree: Path, base: str, path: str, word: str) -> list[bytes]:
    """A patch made on a commit the base does not have: it does not apply (apply-failed),
    so the review has an error and the bot a reply to send."""
    first = commit_edit(tree, base, {path: ("Xen", f"{word} Xen")},
                        f"{path}: one\n\nSigned-off-by: Ada Tester <ada@example.org>")
    second = commit_edit(tree, first, {path: (f"{word} Xen", f"{word}{word} Xen")},
                         f"{path}: say {word}\n\nSigned-off-by: Ada Tester <ada@example.org>")
    return series_mails(tree, first, second)


POINTS = ["before-review:2", "after-outputs:2", "after-commit:2", "reply-intent:1",
          "reply-accepted:2"]


@pytest.mark.parametrize("point", POINTS)
def test_killed_watcher_reviews_and_replies_once(point: str, xen_tree: Path,
                                                 tmp_path: Path) -> None:
    tree = bare_tree(xen_tree, tmp_path / "tree.git")
    base = git(tree, "rev-parse", "HEAD").strip()
    inbox = pinbox.PublicInbox(tmp_path / "pi")
    for path, word in (("README", "One"), ("CONTRIBUTING", "Two"), ("COPYING", "Three")):
        for m in _stale_series(tree, base, path, word):
            inbox.add(m)
    box = ListServer(inbox)
    controller = Controller(box, hostname="127.0.0.1", port=pinbox.free_port())
    controller.start()
    try:
        config = config_file(tmp_path, tree, tmp_path / "abicache",
                             f'[smtp]\nserver = "127.0.0.1"\nport = {controller.port}\n'
                             'encryption = "none"\n')
        args = ("--once", "--send", "--source", str(inbox.inbox_dir), "--base", base,
                "--out", str(tmp_path / "out"), "--state", str(tmp_path / "state.sqlite"))
        killed = run_watch(config, *args, env={"XENPATCH_TEST_CRASH": point})
        assert killed.returncode == -9, killed.stderr
        logs = [killed.stderr]
        for _ in range(3):  # reruns until a pass ends normally
            rerun = run_watch(config, *args)
            logs.append(rerun.stderr)
            if rerun.returncode != -9:
                break
        # 1 when the rerun did reviews (apply-failed is an error), 0 when it only sent.
        assert rerun.returncode in (0, 1), (rerun.stderr, box.errors)
        final = run_watch(config, *args)  # and one more pass: nothing to do
        logs.append(final.stderr)
        assert final.returncode == 0 and "0 reviewed, 0 replies sent" in final.stderr
    finally:
        controller.stop()
    text = "".join(logs)
    # Each series was reviewed once in total (a review killed after its outputs is adopted).
    assert text.count("INFO reviewing '") == 3, text
    rows = State(tmp_path / "state.sqlite").all_series()
    assert len(rows) == 3 and all(r.status == "reviewed" for r in rows)
    # Each reply reached the server exactly once.
    replies = {mid: n for mid, n in box.ids.items() if "xenpatch-review." in mid}
    assert len(replies) == 3 and set(replies.values()) == {1}, (replies, text)
    if point.startswith("reply-accepted"):
        # The second reply was accepted but not recorded: the rerun found it on the list.
        assert text.count("is in the archive: recorded as sent") == 1, text
    assert len(list((tmp_path / "out").glob("*.json"))) == 3
    assert not list((tmp_path / "out").glob(".*.tmp*"))
