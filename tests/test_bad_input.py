"""Malformed inputs (tests/bad-input/, described in its README.md) fed to every command that reads files.

Each run is a real subprocess in an empty directory: one line on stderr
naming the culprit, exit 2, no traceback, nothing on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import one_line_error, run_cli

BAD = Path(__file__).resolve().parent / "bad-input"
CONFIGS = ["config-not-toml.toml", "config-wrong-type.toml", "config-not-utf8.toml"]
DUMPS = ["dump-truncated.json", "dump-not-an-object.json", "dump-missing-key.json",
         "dump-other-schema.json", "binary.patch", "empty.mbox"]
# Every command reads the configuration first.
CONFIG_READERS = [("abi", "dump"), ("abi", "check"), ("abi", "diff", "HEAD", "HEAD"),
                  ("generate",), ("send", "SERIES"), ("maintainers", "xen/include/public/xen.h")]

CASES: list[tuple[str, tuple[str, ...], str]] = [
    *((f"--config {c} {' '.join(cmd)}", ("--config", str(BAD / c), *cmd), c)
      for c in CONFIGS for cmd in CONFIG_READERS),
    *((f"abi diff {d}", ("abi", "diff", str(BAD / d), str(BAD / d), "--tree", "TREE"), d)
      for d in DUMPS),
    *((f"abi {cmd} --headers series-binary", ("abi", cmd, "--headers", str(BAD / "series-binary")),
       "series-binary") for cmd in ("dump", "check")),
    *((f"maintainers {p}", ("maintainers", "--tree", "TREE", str(BAD / p)), p)
      for p in ("binary.patch", "empty.mbox")),
    *((f"send {s}", ("send", str(BAD / s), "--tree", "TREE"), name)
      for s, name in (("series-binary", "0001-binary.patch"), ("series-empty", "0001-empty.patch"),
                      ("series-not-utf8", "0001-latin1.patch"), ("empty.mbox", "empty.mbox"))),
]


def test_every_file_of_the_folder_is_used() -> None:
    used = {c[2] for c in CASES} | {"series-binary", "series-empty", "series-not-utf8",
                                    "headers-not-utf8"}
    assert {p.name for p in BAD.iterdir()} - {"README.md"} <= used
    described = (BAD / "README.md").read_text(encoding="utf-8")
    assert all(f"`{p.name}" in described for p in BAD.iterdir() if p.name != "README.md")


@pytest.mark.parametrize("args, culprit", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...], culprit: str, xen_tree: Path,
                                      tmp_path: Path) -> None:
    args = tuple(str(xen_tree) if a == "TREE" else str(BAD / "series-empty") if a == "SERIES"
                 else a for a in args)
    proc = run_cli(*args, cwd=tmp_path, env={"XENPATCH_ABI_CACHE": str(tmp_path / "cache"),
                                             "GIT_CONFIG_GLOBAL": str(tmp_path / "none")})
    one_line_error(proc, 2, culprit)
    assert proc.stdout == ""


def test_a_header_that_is_not_utf8_is_a_failed_header(tmp_path: Path) -> None:
    """A byte that survives cpp (in a macro) and is not UTF-8: the header fails, named with
    its line, as any header cpp or the parser rejects; a byte in a comment is harmless."""
    proc = run_cli("abi", "dump", "--headers", str(BAD / "headers-not-utf8"), "--arch", "x86_64",
                   cwd=tmp_path, env={"XENPATCH_ABI_CACHE": str(tmp_path / "cache")})
    assert (proc.returncode, proc.stderr) == (0, "")
    failed = json.loads(proc.stdout)["arches"]["x86_64"]["failed"]
    assert failed == [{"header": "xen.h", "error": "xen.h:4: not UTF-8 (byte 0xe9)"}]
