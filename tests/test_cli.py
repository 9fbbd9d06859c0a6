"""The command line contract: usage errors are one line and exit 2, --help works, no tracebacks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import run_cli


def xenpatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd)


@pytest.mark.parametrize("args, fragment", [
    ((), "the following arguments are required: COMMAND"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    (("abi",), "the following arguments are required: ABI_COMMAND"),
    (("abi", "dump", "--arch", "x86_64,sparc"), "unknown arch 'sparc'"),
    (("abi", "dump", "--profile", "dom0"), "invalid choice: 'dom0'"),
    (("abi", "dump", "--format", "yaml"), "invalid choice: 'yaml'"),
    (("send", "dir", "--yes", "--dry-run"), "not allowed with argument"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, args: tuple, fragment: str) -> None:
    proc = xenpatch(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert fragment in proc.stderr
    assert proc.stderr.startswith("xenpatch")
    assert proc.stdout == ""


def test_help_and_version(tmp_path: Path) -> None:
    proc = xenpatch("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "generate" in proc.stdout and "maintainers" in proc.stdout
    proc = xenpatch("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("xenpatch ")


def test_output_to_a_device_writes_through_and_keeps_it(tmp_path: Path) -> None:
    from xenpatch.cli import emit

    emit("x\n", "/dev/null")
    assert Path("/dev/null").is_char_device()
    out = tmp_path / "out.txt"
    emit("hello\n", str(out))
    assert out.read_text() == "hello\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
