"""`send`'s pre-flight review (issue 8, acceptance 5) against a real SMTP server on 127.0.0.1: a
series with an ABI collision is refused (exit 1, nothing sent), --force sends it, a clean series
is sent as before, and the pre-flight's time is reported."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_mail_send import (  # noqa: F401 -- the fixtures of the send tests
    Mailbox,
    certificate,
    config_file,
    git,
    git_config,
    make_series,
    run,
    server,
)


def collision_series(clone: Path, out: Path) -> Path:
    """One patch: a new SIF_ flag on bit 4, which SIF_VIRT_P2M_4TOOLS has."""
    path = clone / "xen/include/public/xen.h"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("#define SIF_PM_MASK", "#define SIF_TAKEN         (1<<4)  "
                                 "/* collides */\n#define SIF_PM_MASK", 1), encoding="utf-8")
    git(clone, "commit", "-q", "-a", "-s", "-m", "xen/public: introduce SIF_TAKEN\n\nA flag.")
    git(clone, "format-patch", "-q", "-o", str(out), "--base=HEAD~1", "HEAD~1..HEAD")
    return out


TIME = re.compile(r"^pre-flight review on [0-9a-f]{12} \(.*\): (\d+) errors?, (\d+) warnings? "
                  r"in (\d+\.\d) s$", re.M)


def test_collision_refused_then_forced(xen_clone: Path, tmp_path: Path, config_file: Path,  # noqa: F811
                                       git_config: Path, server: tuple[Mailbox, int],  # noqa: F811
                                       capsys: pytest.CaptureFixture[str]) -> None:
    box, _ = server
    series = collision_series(xen_clone, tmp_path / "bad")
    code, out, err = run(config_file, "send", str(series), "--yes", capsys=capsys)
    assert code == 1, out + err
    assert box.received == [] and not (series / ".xenpatch-send.json").exists()
    m = TIME.search(out)
    assert m and int(m.group(1)) >= 1, out
    assert "error abi-bit-collision: patch 1: xen/include/public/xen.h:" in out
    assert "SIF_TAKEN" in out and "SIF_VIRT_P2M_4TOOLS" in out
    assert "nothing sent: the pre-flight review found errors (--force sends anyway)" in out
    code, out, err = run(config_file, "send", str(series), "--yes", "--force", "--format", "json",
                         capsys=capsys)
    assert code == 0, out + err
    doc = json.loads(out)
    assert "--force: sent despite the pre-flight errors" in doc["summary"]
    assert any(f["rule"] == "abi-bit-collision" for f in doc["preflight"]["findings"])
    assert doc["preflight"]["seconds"] > 0
    assert len(box.received) == 1 and "SIF_TAKEN" in str(box.received[0]["Subject"])


def test_clean_series_sent_as_before(xen_clone: Path, tmp_path: Path, config_file: Path,  # noqa: F811
                                     git_config: Path, server: tuple[Mailbox, int],  # noqa: F811
                                     capsys: pytest.CaptureFixture[str]) -> None:
    box, _ = server
    series = make_series(xen_clone, tmp_path / "series")
    code, out, err = run(config_file, "send", str(series), "--yes", capsys=capsys)
    assert (code, err) == (0, ""), out
    m = TIME.search(out)
    assert m and m.group(1) == "0", out
    assert "sent 4 messages" in out and len(box.received) == 4
