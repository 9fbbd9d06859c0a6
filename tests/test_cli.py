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


# A process that ends in cli.run: an exit handler, an object that speaks when freed, and,
# when asked, a thread still running.
_ENDING = """
import atexit, sys, threading, time
from xenpatch import cli

class Freed:
    def __del__(self):
        sys.stderr.write("freed at teardown\\n")

kept = Freed()
atexit.register(lambda: sys.stderr.write("exit handler ran\\n"))
if sys.argv[1] == "thread":
    threading.Thread(target=time.sleep, args=(0.2,)).start()
sys.argv[1:] = ["--version"]
cli.run()
"""


@pytest.mark.parametrize("thread", [False, True], ids=["alone", "a thread left"])
def test_run_leaves_without_teardown_only_when_nothing_is_left_to_join(
        tmp_path: Path, thread: bool) -> None:
    """``cli.run`` (the ``xenpatch`` command): the exit handlers run and the output is
    flushed, then the process leaves with main's code, without freeing every object one by
    one; with a thread still running, the interpreter's own exit joins it."""
    import sys

    proc = subprocess.run([sys.executable, "-c", _ENDING, "thread" if thread else "alone"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("xenpatch ")
    assert "exit handler ran" in proc.stderr
    assert ("freed at teardown" in proc.stderr) == thread


def test_a_profiled_command_still_writes_its_profile(tmp_path: Path) -> None:
    """``python -m cProfile -m xenpatch.cli``: the profiler writes its file once the program
    returns, so ``cli.run`` leaves the normal way under it."""
    import sys

    out = tmp_path / "xenpatch.prof"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "xenpatch.cli",
                           "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


def test_the_installed_command_is_run() -> None:
    """The console script is ``cli.run``, not ``main`` (which returns: a test's entry)."""
    import tomllib

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["xenpatch"] == "xenpatch.cli:run"
