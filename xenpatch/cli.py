"""The command line: argument parsing, output formats and exit codes only.

Exit codes (DESIGN.md): 0 success and no error-level finding; 1 error-level
findings; 2 usage, configuration or input error; 3 environment failure
(git or cpp missing, SMTP or HTTP failure).  Errors are one line on stderr;
``-v`` adds the traceback.  Each command calls one library function and
turns its result into text, JSON or Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import ARCH_NAMES, PROFILE_NAMES, Config, load_config
from .errors import EXIT_USAGE, UsageError, XenpatchError
from .result import Result


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _arch_list(text: str) -> list[str]:
    arches = [a.strip() for a in text.split(",") if a.strip()]
    bad = [a for a in arches if a not in ARCH_NAMES]
    if bad or not arches:
        raise argparse.ArgumentTypeError(
            f"unknown arch {(bad or [text])[0]!r} (known: {', '.join(ARCH_NAMES)})")
    return arches


def build_parser() -> _Parser:
    p = _Parser(prog="xenpatch", description="Change and review Xen's public ABI.")
    p.add_argument("--version", action="version", version=f"xenpatch {__version__}")
    p.add_argument("--config", metavar="FILE", help="configuration file (default: ./config.toml)")
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0)
    verbosity.add_argument("-q", "--quiet", action="store_true")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    abi = sub.add_parser("abi", help="ABI model, checks and diffs of the public headers")
    abi_sub = abi.add_subparsers(dest="abi_command", metavar="ABI_COMMAND", parser_class=_Parser)
    abi_sub.required = True

    def arch_opts(q: argparse.ArgumentParser) -> None:
        q.add_argument("--tree", metavar="DIR", help="Xen tree (default: [tree].path)")
        q.add_argument("--arch", type=_arch_list, metavar="A,B",
                       help=f"arches (default: {','.join(ARCH_NAMES)})")
        q.add_argument("--profile", choices=PROFILE_NAMES, help="header view (default: tools)")
        q.add_argument("-j", "--jobs", type=int, metavar="N", help="parallel jobs (default: cores)")

    dump = abi_sub.add_parser("dump", help="the ABI model of every public header")
    arch_opts(dump)
    dump.add_argument("--headers", metavar="DIR", help="an installed header directory instead of a tree")
    dump.add_argument("--rev", metavar="REV", help="read the headers of this commit of the tree")
    dump.add_argument("--format", choices=("json", "text"), default="json")
    dump.add_argument("-o", "--output", metavar="FILE")
    dump.set_defaults(handler="abi_dump")

    check = abi_sub.add_parser("check", help="collisions inside one snapshot")
    arch_opts(check)
    check.add_argument("--headers", metavar="DIR", help="an installed header directory instead of a tree")
    check.add_argument("--rev", metavar="REV")
    check.add_argument("--format", choices=("json", "text"), default="text")
    check.add_argument("-o", "--output", metavar="FILE")
    check.set_defaults(handler="abi_check")

    diff = abi_sub.add_parser("diff", help="drift between two snapshots")
    arch_opts(diff)
    diff.add_argument("old", metavar="OLD", help="git rev, header directory or dump file")
    diff.add_argument("new", metavar="NEW", help="git rev, header directory or dump file")
    diff.add_argument("--format", choices=("json", "text", "markdown"), default="text")
    diff.add_argument("-o", "--output", metavar="FILE")
    diff.set_defaults(handler="abi_diff")

    gen = sub.add_parser("generate", help="render, commit, self-check and write a series")
    gen.add_argument("change", nargs="?", metavar="CHANGE", help="change name in [changes] of the config")
    gen.add_argument("--tree", metavar="DIR")
    gen.add_argument("--base", metavar="REV")
    gen.add_argument("--out", metavar="DIR")
    gen.add_argument("--version", dest="series_version", type=int, metavar="N")
    rfc = gen.add_mutually_exclusive_group()
    rfc.add_argument("--rfc", dest="rfc", action="store_true", default=None)
    rfc.add_argument("--no-rfc", dest="rfc", action="store_false")
    so = gen.add_mutually_exclusive_group()
    so.add_argument("--signoff", dest="signoff", action="store_true", default=None)
    so.add_argument("--no-signoff", dest="signoff", action="store_false")
    gen.add_argument("--changelog", metavar="TEXT", help="'Changes in vN:' text for the cover letter")
    gen.add_argument("--build-check", action="store_true", help="also build libxenguest, libxl and xl")
    gen.add_argument("--format", choices=("json", "text"), default="text")
    gen.set_defaults(handler="generate")

    send = sub.add_parser("send", help="mail a series (a dry run unless --yes)")
    send.add_argument("series_dir", metavar="SERIES_DIR")
    send.add_argument("--to", action="append", default=[], metavar="ADDR")
    send.add_argument("--cc", action="append", default=[], metavar="ADDR")
    mode = send.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true")
    mode.add_argument("--yes", action="store_true", help="really send")
    send.add_argument("--in-reply-to", metavar="MESSAGE_ID")
    send.add_argument("--mbox", metavar="FILE", help="write the messages to this mbox")
    send.add_argument("--tree", metavar="DIR", help="tree whose MAINTAINERS picks the Cc")
    send.add_argument("--batch", type=int, metavar="N")
    send.add_argument("--pause", type=int, metavar="S")
    send.add_argument("--force", action="store_true",
                      help="send even when the pre-flight review finds errors")
    send.add_argument("--format", choices=("json", "text"), default="text")
    send.set_defaults(handler="send")

    maint = sub.add_parser("maintainers", help="To/Cc for patches or paths, as get_maintainer.pl")
    maint.add_argument("paths", nargs="+", metavar="PATCH_OR_PATH")
    maint.add_argument("--tree", metavar="DIR")
    maint.add_argument("--format", choices=("json", "text"), default="text")
    maint.set_defaults(handler="maintainers")
    _add_review(sub)
    _add_watch(sub)
    _add_claims(sub)
    return p


def _add_review(sub: Any) -> None:
    """``review SOURCE [--tree DIR] [--base REV] [--archive URL] [--message-id ID]
    [--version N] [--format ...] [-o FILE] [--send [--yes]]``."""
    q = sub.add_parser("review", help="review one series: apply it, diff its ABI, run Xen's rules")
    q.add_argument("source", metavar="SOURCE",
                   help="mbox, maildir, format-patch directory, public-inbox mirror, Message-ID "
                        "or thread URL")
    q.add_argument("--tree", metavar="DIR", help="Xen git tree to apply onto (default: [tree].path)")
    q.add_argument("--base", dest="review_base", metavar="REV",
                   help="apply onto REV (default: the series' base-commit:, else [tree].base)")
    q.add_argument("--archive", metavar="URL", help="public-inbox archive (default: [list].archive)")
    q.add_argument("--message-id", metavar="ID", help="the thread to take from a mirror")
    q.add_argument("--version", dest="review_version", type=int, metavar="N",
                   help="review vN of the thread (default: the newest complete one)")
    q.add_argument("--format", choices=("text", "json", "markdown", "email"), default="text")
    q.add_argument("-o", "--output", metavar="FILE")
    q.add_argument("--send", action="store_true", help="mail the replies (a dry run unless --yes)")
    q.add_argument("--yes", action="store_true", help="with --send: really send")
    q.set_defaults(handler="review")


def _add_watch(sub: Any) -> None:
    w = sub.add_parser("watch", help="the review bot: each new series version on a list reviewed once")
    w.add_argument("--source", action="append", default=[], metavar="URL_OR_DIR",
                   help="a public-inbox URL (new.atom) or a public-inbox v2 git mirror; repeatable")
    w.add_argument("--once", action="store_true", help="one pass, then exit (0, 1 or 3)")
    w.add_argument("--interval", type=float, metavar="S", help="seconds between passes (300)")
    w.add_argument("--wait", type=float, default=3600.0, metavar="S",
                   help="seconds an incomplete series waits before it is reviewed as such (3600)")
    w.add_argument("--state", metavar="FILE", help="SQLite state (default: <cache>/watch.sqlite)")
    w.add_argument("--out", metavar="DIR", help="review JSON and reply .eml (./xenpatch-watch)")
    w.add_argument("--tree", metavar="DIR")
    w.add_argument("--base", metavar="REV", help="apply onto REV (default: base-commit:, "
                   "else [tree].base)")
    w.add_argument("--send", action="store_true", help="mail the replies (each once)")
    w.set_defaults(handler="watch")


def _add_claims(sub: Any) -> None:
    c = sub.add_parser("claims", help="the open cross-series ABI claims the bot has seen")
    c.add_argument("--state", metavar="FILE", help="SQLite state (default: <cache>/watch.sqlite)")
    c.add_argument("--format", choices=("json", "text"), default="text")
    c.set_defaults(handler="claims")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line flags that override configuration keys."""
    get = lambda name: getattr(args, name, None)  # noqa: E731
    # Paths on the command line are taken from the current directory (those in
    # the config file from the file's directory: Config.resolve_path).
    def absolute(name: str) -> str | None:
        value = get(name)
        return str(Path(value).resolve()) if value else None

    return {
        "tree.path": absolute("tree"),
        "tree.base": get("base"),
        "abi.arches": get("arch"),
        "abi.profile": get("profile"),
        "abi.jobs": get("jobs"),
        "series.version": get("series_version"),
        "series.rfc": get("rfc"),
        "series.signoff": get("signoff"),
        "series.out": absolute("out"),
        "series.changelog": get("changelog"),
        "smtp.batch": get("batch"),
        "smtp.pause": get("pause"),
    }


def emit(text: str, output: str | None = None) -> None:
    """Write TEXT to OUTPUT (atomically) or stdout."""
    if output:
        path = Path(output)
        if path.exists() and not path.is_file():
            # A device or FIFO (-o /dev/stdout): write through, never replace it.
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
            except OSError as e:
                raise UsageError(f"-o {output}: cannot write: {e.strerror}") from e
            return
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise UsageError(f"-o {output}: cannot write: {e.strerror}") from e
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def emit_json(doc: dict[str, Any], output: str | None = None) -> None:
    emit(json.dumps(doc, sort_keys=True, indent=2) + "\n", output)


def _handlers() -> dict[str, Callable[[argparse.Namespace, Config], int | Result]]:
    """Each capability's command module: ``(args, config) -> Result`` (or, for commands not
    yet converted, an exit code after printing themselves).

    Imported only when its command runs, so that a quick command (a warm
    ``abi dump``) does not pay for GitPython, jinja2 or requests."""
    import importlib

    def lazy(module: str, name: str) -> Callable[[argparse.Namespace, Config], int | Result]:
        def handler(args: argparse.Namespace, config: Config) -> int | Result:
            return getattr(importlib.import_module(module, __package__), name)(args, config)
        return handler

    return {
        "abi_dump": lazy(".abi.command", "dump"),
        "abi_check": lazy(".abi.command", "check"),
        "abi_diff": lazy(".abi.command", "diff"),
        "generate": lazy(".generate.command", "generate"),
        "send": lazy(".mail.command", "send"),
        "maintainers": lazy(".mail.command", "maintainers"),
        "review": lazy(".review.command", "review"),
        "watch": lazy(".review.watchcommand", "watch"),
        "claims": lazy(".review.watchcommand", "claims"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    try:
        args = build_parser().parse_args(argv)
        config = load_config(args.config).with_overrides(_overrides(args))
        outcome = _handlers()[args.handler](args, config)
        if isinstance(outcome, Result):
            if not getattr(args, "quiet", False):
                for line in outcome.messages:
                    print(line, file=sys.stderr)
            if outcome.text:
                emit(outcome.text, outcome.output)
            return outcome.exit_code
        return outcome
    except XenpatchError as e:
        if verbose:
            traceback.print_exc()
        print(f"xenpatch: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("xenpatch: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # The reader went away (xenpatch ... | head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except SystemExit as e:  # --help / --version
        return int(e.code or 0) if isinstance(e.code, int) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
