"""The one place xenpatch runs subprocesses (cpp, cc, perl, git when GitPython cannot)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import EnvironmentFailure

DEFAULT_TIMEOUT = 300.0


def which(program: str) -> str:
    """The full path of PROGRAM, or EnvironmentFailure naming it."""
    path = shutil.which(program)
    if path is None:
        raise EnvironmentFailure(f"{program}: not found on PATH")
    return path


def run(
    argv: Sequence[str],
    *,
    input: str | bytes | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    check: bool = False,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run ARGV and capture its output.

    A program that is missing or a run that times out is an
    EnvironmentFailure; a non-zero exit is returned to the caller (who knows
    what it means) unless CHECK is set, when it is an EnvironmentFailure
    with the last line of stderr.
    """
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    if isinstance(input, bytes):
        text = False
    try:
        proc = subprocess.run(
            list(argv), input=input, cwd=cwd, env=full_env, timeout=timeout,
            capture_output=True, text=text,
        )
    except FileNotFoundError as e:
        raise EnvironmentFailure(f"{argv[0]}: not found on PATH") from e
    except subprocess.TimeoutExpired as e:
        raise EnvironmentFailure(f"{argv[0]}: timed out after {timeout:.0f} s") from e
    if check and proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        last = (err.strip().splitlines() or ["(no output)"])[-1]
        raise EnvironmentFailure(f"{argv[0]} exited {proc.returncode}: {last}")
    return proc


def stream(
    argv: Sequence[str],
    on_line: Callable[[str], None],
    *,
    cwd: str | Path | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[int, list[str]]:
    """Run ARGV with stderr merged into stdout, handing each output line to ON_LINE as it
    arrives (for progress); returns the exit code and every line.

    A missing program or a run past TIMEOUT is an EnvironmentFailure, as in ``run``."""
    try:
        child = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 text=True, errors="replace")
    except FileNotFoundError as e:
        raise EnvironmentFailure(f"{argv[0]}: not found on PATH") from e
    deadline = None if timeout is None else time.monotonic() + timeout
    lines: list[str] = []
    assert child.stdout is not None
    with child:
        for raw in child.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            on_line(line)
            if deadline is not None and time.monotonic() > deadline:
                child.kill()
                raise EnvironmentFailure(f"{argv[0]}: timed out after {timeout:.0f} s")
    return child.returncode, lines
