"""generate's --out: an earlier series and what send left there is replaced, anything else is refused
before any work starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xenpatch.errors import UsageError
from xenpatch.generate.series import check_out


def test_absent_and_earlier_series_are_fine(tmp_path: Path) -> None:
    check_out(tmp_path / "new" / "series")
    out = tmp_path / "series"
    out.mkdir()
    for name in ("0000-cover-letter.patch", "0001-x.patch", "xenpatch-dry-run.mbox",
                 ".xenpatch-send.json", ".xenpatch-dry-run.mbox.tmp1234"):
        (out / name).write_text("x\n")
    check_out(out)


@pytest.mark.parametrize("make, message", [
    (lambda p: (p / "notes.txt").write_text("mine\n"), r"exists and is not a series directory "
                                                       r"\(notes.txt is neither a patch"),
    (lambda p: (p / "sub").mkdir(), r"\(sub is neither"),
])
def test_foreign_content_is_refused(tmp_path: Path, make, message: str) -> None:
    out = tmp_path / "series"
    out.mkdir()
    make(out)
    with pytest.raises(UsageError, match=message):
        check_out(out)


def test_a_file_or_an_unwritable_place_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="exists and is not a directory"):
        check_out(tmp_path / "file")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(UsageError, match="cannot write in"):
            check_out(ro / "series")


def test_bad_out_is_reported_before_any_work(tmp_path: Path) -> None:
    """No tree is given or fetched: the --out error comes first, at once."""
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XENPATCH_")}
    env["XENPATCH_CACHE"] = str(tmp_path / "no-cache")  # cwd has no config.toml: no tree configured
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", "generate", "--build-check",
                           "--out", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert time.monotonic() - start < 10
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "thesis.tex" in proc.stderr, proc.stderr
    assert not (tmp_path / "no-cache").exists()  # nothing was fetched
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
