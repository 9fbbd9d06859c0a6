"""Files written whole or not at all (``xenpatch.atomic``): every writer of ``-o``, the send
record and mbox, the watch bot's replies and the caches goes through it."""

from __future__ import annotations

import pytest

from xenpatch import atomic


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old\n")
    atomic.write(path, "naïve\n")
    assert path.read_bytes() == "naïve\n".encode()  # text is UTF-8, whatever the locale
    atomic.write(path, b"\x00bytes")
    assert path.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    # The rename is what fails: a directory with something in it is in the way, after
    # the temporary file was written.
    path = tmp_path / "busy"
    (path / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        atomic.write(path, b"new")
    assert (path / "inside").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def test_a_cache_write_makes_its_directory_and_never_raises(tmp_path):
    assert atomic.write_cache(tmp_path / "a" / "b" / "entry", "x")
    assert (tmp_path / "a" / "b" / "entry").read_text() == "x"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert not atomic.write_cache(blocker / "entry", "x")  # its "directory" is a file
    (tmp_path / "busy" / "inside").mkdir(parents=True)
    assert not atomic.write_cache(tmp_path / "busy", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "busy", "file"]
