"""Every command's options have help text and its --help ends with an example; -q/-v work
before or after the command's name."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from xenpatch.cli import build_parser

# The commands this module holds to it (new commands are added by their own modules).
COMMANDS = [("abi",), ("abi", "dump"), ("abi", "check"), ("abi", "diff"), ("abi", "history"),
            ("generate",), ("send",), ("maintainers",), ("fetch-xen",), ("review",), ("watch",),
            ("claims",)]


def _subparser(path: tuple[str, ...], parser: argparse.ArgumentParser | None = None
               ) -> argparse.ArgumentParser:
    parser = parser or build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_has_help_and_an_example(path: tuple[str, ...]) -> None:
    parser = _subparser(path)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help and action.help != argparse.SUPPRESS, (path, action.option_strings or action.dest)
    assert parser.epilog and parser.epilog.startswith("example:\n  xenpatch ")
    assert parser.epilog.splitlines()[1].split()[1:1 + len(path)] == list(path)
    options = {s for a in parser._actions for s in a.option_strings}
    assert {"-q", "-v", "--quiet", "--verbose"} <= options


def test_q_and_v_after_the_command_name() -> None:
    args = build_parser().parse_args(["abi", "check", "-q", "--arch", "x86_64"])
    assert args.quiet is True and args.verbose == 0
    args = build_parser().parse_args(["-q", "generate"])
    assert args.quiet is True
    args = build_parser().parse_args(["maintainers", "-v", "-v", "x"])
    assert args.verbose == 2 and args.quiet is False
    args = build_parser().parse_args(["-v", "send", "-v", "series"])
    assert args.verbose >= 1  # argparse gives the subcommand its own count


def test_verbose_after_the_command_adds_the_traceback(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "xenpatch.cli", "abi", "check", "-v",
                           "--tree", str(tmp_path / "none")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback (most recent call last)" in proc.stderr
    quiet = subprocess.run([sys.executable, "-m", "xenpatch.cli", "abi", "check", "-q",
                            "--tree", str(tmp_path / "none")], capture_output=True, text=True)
    assert quiet.returncode == 2 and quiet.stderr.count("\n") == 1 and "Traceback" not in quiet.stderr


@pytest.mark.parametrize("argv", [
    ["abi", "diff", "RELEASE-4.21.0", "HEAD", "--tree", "xen", "-q", "--format", "json"],
    ["-v", "--config", "abi", "abi", "dump", "--arch", "x86_64"],
    ["--config=c.toml", "generate", "abi", "--no-rfc"],
    ["abi", "history", "RELEASE-4.21.0..HEAD"],
    ["fetch-xen", "xen-4.17"],
    ["review", "series.mbox", "--format", "json"],
])
def test_a_command_line_builds_only_its_command_and_parses_the_same(argv: list[str]) -> None:
    """``build_parser(ARGV)`` builds the parsers of the command ARGV names and of no other
    (the start of every command), and gives what the whole parser gives."""
    some, every = build_parser(argv), build_parser()
    assert vars(some.parse_args(argv)) == vars(every.parse_args(argv))
    built = next(a for a in some._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(built) == 1 and set(built) < set(next(
        a for a in every._actions if isinstance(a, argparse._SubParsersAction)).choices)


@pytest.mark.parametrize("argv", [["--help"], ["abi", "--help"], ["frobnicate"], ["abi", "frob"],
                                  []])
def test_help_and_unknown_names_build_every_command_at_their_level(argv: list[str]) -> None:
    """Help lists the commands and an unknown name's error names them all: built whole."""
    some, every = build_parser(argv), build_parser()
    assert some.format_help() == every.format_help()
    assert _subparser(("abi",), some).format_help() == _subparser(("abi",), every).format_help()
