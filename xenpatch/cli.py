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
from typing import Any, NoReturn

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


def _example(*lines: str) -> str:
    """An epilog with examples, as git's man pages show them."""
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


def _command(sub: Any, name: str, help: str, example: str | tuple[str, ...]) -> Any:
    """A subcommand parser whose --help ends with EXAMPLE; ``_Unbuilt`` when the command
    line names another command at that level (``build_parser``'s ARGV)."""
    wanted = getattr(sub, "wanted", None)
    if wanted is not None and wanted != name:
        return _Unbuilt()
    lines = (example,) if isinstance(example, str) else example
    return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".",
                          epilog=_example(*lines), formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    """-v/-q on PARSER and on every subcommand below it, so ``xenpatch CMD -q`` works as
    ``xenpatch -q CMD`` does (the subcommands' defaults are SUPPRESS: they never reset
    what the top level set)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                if "-q" not in child._option_string_actions and "-v" not in child._option_string_actions:
                    group = child.add_mutually_exclusive_group()
                    group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                                       help=VERBOSE_HELP)
                    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                                       help=QUIET_HELP)
                _add_verbosity(child)


VERBOSE_HELP = "more detail: the traceback of an error"
QUIET_HELP = "only errors and the output asked for (reports, JSON): no progress or summaries"
FORMAT_HELP = "output format (default: %(default)s)"
OUTPUT_HELP = "write to FILE (atomically) instead of stdout"
TREE_HELP = "the Xen tree (default: [tree].path, else the tree fetch-xen fetches)"


class _Unbuilt:
    """A command the command line does not run, not built (``build_parser``): whatever is
    asked of it, it answers with itself."""

    epilog: str | None = None
    required = False

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


# The options of the top level that take a value (the command name comes after it).
_VALUED = ("--config",)


def _named(argv: Sequence[str]) -> tuple[str, ...]:
    """The command and subcommand names ARGV begins with, past the top level's options;
    () when it asks for help or names none."""
    if any(a in ("-h", "--help") for a in argv):
        return ()
    names: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED and not names:
            skip = True
        elif arg.startswith("-"):
            continue
        else:
            names.append(arg)
            if len(names) == 2:
                break
    return tuple(names)


def build_parser(argv: Sequence[str] | None = None) -> _Parser:
    """The command line's parser; given ARGV, only the parsers of the command (and abi's
    subcommand) it names are built, as only those parse it (measured: 9 ms of every
    command's start went to building all of them), unless it asks for help or names no
    command there is: then all, for their lists and messages."""
    named = _named(argv) if argv is not None else ()
    if named:
        p = _build(named)
        if _has(p, named):
            return p
    return _build(())


def _has(parser: argparse.ArgumentParser, named: tuple[str, ...]) -> bool:
    """Whether PARSER has the commands NAMED (a name that is none: the error lists them)."""
    for name in named:
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not commands:  # a command without subcommands: the rest is its arguments
            return True
        if name not in commands[0].choices:
            return False
        parser = commands[0].choices[name]
    return True


def _build(named: tuple[str, ...]) -> _Parser:
    """The parser, with only the commands NAMED (the command, abi's subcommand) built: all
    at a level NAMED does not reach."""
    p = _Parser(prog="xenpatch", description="Change and review Xen's public ABI.",
                epilog=_example("xenpatch generate --tree ~/src/xen",
                                "xenpatch COMMAND --help    (each command's options and an example)"),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"xenpatch {__version__}")
    p.add_argument("--config", metavar="FILE",
                   help="configuration file (default: $XENPATCH_CONFIG, else ./config.toml if present)")
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    verbosity.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    sub.wanted = named[0] if named else None  # type: ignore[attr-defined]

    abi = _command(sub, "abi", "ABI model, checks and diffs of the public headers",
                   "xenpatch abi check --tree ~/src/xen")
    abi_sub = abi.add_subparsers(dest="abi_command", metavar="ABI_COMMAND", parser_class=_Parser)
    abi_sub.required = True
    abi_sub.wanted = named[1] if len(named) > 1 and named[0] == "abi" else None  # type: ignore[attr-defined]

    def arch_opts(q: argparse.ArgumentParser) -> None:
        q.add_argument("--tree", metavar="DIR", help=TREE_HELP)
        q.add_argument("--arch", type=_arch_list, metavar="A,B",
                       help=f"arches (default: {','.join(ARCH_NAMES)})")
        q.add_argument("--profile", choices=PROFILE_NAMES,
                       help="header view: tools defines __XEN_TOOLS__, guest the legacy interface, "
                            "guest-latest __XEN_LATEST_INTERFACE_VERSION__ (default: tools)")
        q.add_argument("-j", "--jobs", type=int, metavar="N", help="parallel jobs (default: one per core)")

    dump = _command(abi_sub, "dump", "the ABI model of every public header",
                    "xenpatch abi dump --tree ~/src/xen --arch x86_64 --format text")
    arch_opts(dump)
    dump.add_argument("--headers", metavar="DIR",
                      help="an installed header directory (a libxen-dev /usr/include/xen) instead of a tree")
    dump.add_argument("--rev", metavar="REV", help="read the headers of this commit of the tree")
    dump.add_argument("--format", choices=("json", "text"), default="json", help=FORMAT_HELP)
    dump.add_argument("-o", "--output", metavar="FILE", help=OUTPUT_HELP)
    dump.set_defaults(handler="abi_dump")

    check = _command(abi_sub, "check", "collisions inside one snapshot",
                     "xenpatch abi check --headers ~/.cache/xenpatch/headers-4.20 --arch x86_64")
    arch_opts(check)
    check.add_argument("--headers", metavar="DIR",
                       help="an installed header directory (a libxen-dev /usr/include/xen) instead of a tree")
    check.add_argument("--rev", metavar="REV", help="check the headers of this commit of the tree")
    check.add_argument("--format", choices=("json", "text"), default="text", help=FORMAT_HELP)
    check.add_argument("-o", "--output", metavar="FILE", help=OUTPUT_HELP)
    check.set_defaults(handler="abi_check")

    diff = _command(abi_sub, "diff", "drift between two snapshots",
                    "xenpatch abi diff ~/.cache/xenpatch/headers-4.17 ~/.cache/xenpatch/headers-4.20")
    diff.epilog = (diff.epilog or "") + "\n\n" + DIFF_RULES
    arch_opts(diff)
    diff.add_argument("old", metavar="OLD", help="git rev of the tree, header directory or dump file")
    diff.add_argument("new", metavar="NEW", help="git rev of the tree, header directory or dump file")
    diff.add_argument("--format", choices=("json", "text", "markdown", "codeclimate"), default="text",
                      help=FORMAT_HELP)
    diff.add_argument("-o", "--output", metavar="FILE", help=OUTPUT_HELP)
    diff.set_defaults(handler="abi_diff")
    _add_abi_history(abi_sub)

    gen = _command(sub, "generate", "render, commit, self-check and write a series",
                   "xenpatch generate --tree ~/src/xen --out series --no-rfc --version 2")
    gen.add_argument("change", nargs="?", metavar="CHANGE",
                     help="a change in [changes] of the config or shipped with xenpatch "
                          "(default: [series].default_change, sif-hvm-ghcb)")
    gen.add_argument("--tree", metavar="DIR",
                     help="the Xen git checkout to work on; it is never modified "
                          "(default: [tree].path, else Xen 4.17.5 fetched from Debian)")
    gen.add_argument("--base", metavar="REV", help="the commit the series applies to (default: HEAD)")
    gen.add_argument("--out", metavar="DIR",
                     help="the series directory, replaced when it holds only an earlier series "
                          "(default: [series].out, ./series)")
    gen.add_argument("--version", dest="series_version", type=int, metavar="N",
                     help="series version: [PATCH vN] and 'Changes in vN:' (default: 1)")
    rfc = gen.add_mutually_exclusive_group()
    rfc.add_argument("--rfc", dest="rfc", action="store_true", default=None,
                     help="mark the series [RFC PATCH] (the default: [series].rfc)")
    rfc.add_argument("--no-rfc", dest="rfc", action="store_false", help="a plain [PATCH] series")
    so = gen.add_mutually_exclusive_group()
    so.add_argument("--signoff", dest="signoff", action="store_true", default=None,
                    help="add Signed-off-by from your identity (the default: [series].signoff)")
    so.add_argument("--no-signoff", dest="signoff", action="store_false",
                    help="no Signed-off-by (it certifies the DCO; only you can give it)")
    gen.add_argument("--changelog", metavar="TEXT", help="'Changes in vN:' text for the cover letter")
    gen.add_argument("--in-reply-to", metavar="MESSAGE_ID",
                     help="thread the series to the previous version's cover letter")
    gen.add_argument("--build-check", action="store_true", help="also build libxenguest, libxl and xl")
    gen.add_argument("--format", choices=("json", "text"), default="text",
                     help="the summary's format (default: %(default)s)")
    gen.set_defaults(handler="generate")

    send = _command(sub, "send", "mail a series (a dry run unless --yes)",
                    ("xenpatch send series --cc someone@example.org    "
                     "# dry run: shows and writes the mails, sends none"))
    send.add_argument("series_dir", metavar="SERIES_DIR", help="a directory of git format-patch files")
    send.add_argument("--to", action="append", default=[], metavar="ADDR",
                      help="another To: besides [list].address (repeatable)")
    send.add_argument("--cc", action="append", default=[], metavar="ADDR",
                      help="another Cc: besides the maintainers (repeatable)")
    mode = send.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true",
                      help="show the mails and write them to SERIES_DIR/xenpatch-dry-run.mbox (the default)")
    mode.add_argument("--yes", action="store_true",
                      help="really send (SMTP from [smtp], else git sendemail.*)")
    send.add_argument("--in-reply-to", metavar="MESSAGE_ID", help="thread the series under this message")
    send.add_argument("--mbox", metavar="FILE", help="write the messages to this mbox")
    send.add_argument("--tree", metavar="DIR",
                      help="tree whose MAINTAINERS picks the Cc (default: [tree].path)")
    send.add_argument("--batch", type=int, metavar="N",
                      help="a new SMTP session every N messages, as git send-email --batch-size "
                           "(default: [smtp].batch, 0 = one session)")
    send.add_argument("--pause", type=int, metavar="S",
                      help="seconds between batches, as --relogin-delay (default: [smtp].pause)")
    send.add_argument("--force", action="store_true",
                      help="send even when the pre-flight review finds errors")
    send.add_argument("--format", choices=("json", "text"), default="text", help=FORMAT_HELP)
    send.set_defaults(handler="send")

    maint = _command(sub, "maintainers", "To/Cc for patches or paths, as get_maintainer.pl",
                     "xenpatch maintainers --tree ~/src/xen series/0001-*.patch")
    maint.add_argument("paths", nargs="+", metavar="PATCH_OR_PATH",
                       help="patch files, or paths in the tree")
    maint.add_argument("--tree", metavar="DIR", help="tree whose MAINTAINERS is read (default: [tree].path)")
    maint.add_argument("--format", choices=("json", "text"), default="text", help=FORMAT_HELP)
    maint.set_defaults(handler="maintainers")

    _add_fetch_xen(sub)
    _add_review(sub)
    _add_watch(sub)
    _add_claims(sub)
    _add_verbosity(p)  # last: covers every command added above
    return p


def _add_fetch_xen(sub: Any) -> None:
    fetch = _command(sub, "fetch-xen",
                     "fetch the default Xen tree and libxen-dev headers from Debian (cached)",
                     "xenpatch fetch-xen xen-4.17    # prints: xen-4.17 ~/.cache/xenpatch/xen-4.17")
    if isinstance(fetch, _Unbuilt):
        return
    from .fetchxen import TARGETS

    fetch.add_argument("names", nargs="*", metavar="NAME",
                       help=f"what to fetch: {', '.join(TARGETS)} (default: all)")
    fetch.add_argument("--cache", metavar="DIR",
                       help="where (default: $XENPATCH_CACHE, else ~/.cache/xenpatch)")
    fetch.set_defaults(handler="fetch_xen")


DIFF_RULES = """\
how changes are rated (the rules and where Xen states them):
  breaking     something code built against OLD relies on moved or went away:
               a macro, type, field or enumerator removed, a value changed, a
               size, alignment, offset or bit position moved
  compatible   additions that move nothing (padding taken, new constants)
  info         version numbers and *_MAX markers that move by design, spelling-
               only type changes, macros without an integer value
  interface    each change is 'stable' when the guest or guest-latest view sees
               it (no __XEN__/__XEN_TOOLS__), else 'tools' (domctl.h, sysctl.h:
               "intended for use by node control tools only"; the
               '#if defined(__XEN__) || defined(__XEN_TOOLS__)' blocks)
  stable break stays breaking (xen-compat.h: guests that do not ask for a
               version get the legacy interface, which must keep working)
  guarded      a stable break that the legacy guest view does not see while it
               keeps the definition (#if __XEN_INTERFACE_VERSION__ >= ...) is
               compatible: old guests keep the old view (xen-compat.h)
  tools break  needs a bump of the header's *_INTERFACE_VERSION since the last
               RELEASE-* tag (domctl.h/sysctl.h: "incremented by 1 in case the
               interface is modified in an incompatible way AND if the version
               hasn't been incremented in the current development cycle
               already"): with it compatible, citing the bump; without it kind
               interface-version (breaking) naming the macro; in a header
               without one, the version whose prefix the name has
               (XEN_DOMCTL_CONFIG_*) or whose header's records contain the
               record (xen_arch_domainconfig: XEN_DOMCTL_); with none
               (memory.h's tools blocks) it stays breaking
  last release the tag NEW's development cycle started from (xen/Makefile's
               XEN_VERSION.XEN_SUBVERSION: 4.22 counts from RELEASE-4.21.0),
               else the nearest RELEASE-* ancestor, else OLD
  alias        a removed macro that was another name for one that stays
               (VGCF_IN_KERNEL next to VGCF_in_kernel, 4.22) is kind
               macro-alias-removed, compatible: an API change, not an ABI break
exit status: 1 when any change is breaking (interface-version included)
"""


def _add_abi_history(abi_sub: Any) -> None:
    hist = _command(abi_sub, "history", "the ABI events of each commit touching public/",
                    "xenpatch abi history RELEASE-4.21.0..RELEASE-4.22.0 --tree ~/src/xen "
                    "--format markdown")
    hist.description = ("Per commit of REV_RANGE that touches xen/include/public, oldest first: "
                        "its ABI events against its first parent, rated as 'abi diff' rates them.")
    hist.add_argument("range", nargs="?", metavar="REV_RANGE",
                      help="A..B (default: the last RELEASE-* tag..HEAD); A alone means A..HEAD")
    hist.add_argument("--tree", metavar="DIR", help="Xen git repository (default: [tree].path)")
    hist.add_argument("--arch", type=_arch_list, metavar="A,B",
                      help=f"arches (default: {','.join(ARCH_NAMES)})")
    hist.add_argument("-j", "--jobs", type=int, metavar="N", help="parallel jobs (default: cores)")
    hist.add_argument("--format", choices=("text", "json", "markdown", "codeclimate"),
                      default="text", help=FORMAT_HELP)
    hist.add_argument("-o", "--output", metavar="FILE", help=OUTPUT_HELP)
    hist.set_defaults(handler="abi_history")


def _add_review(sub: Any) -> None:
    """``review SOURCE [--tree DIR] [--base REV] [--archive URL] [--message-id ID]
    [--version N] [--format ...] [-o FILE] [--send [--yes]]``."""
    q = _command(sub, "review", "review one series: apply it, diff its ABI, run Xen's rules",
                 ("xenpatch review 20260101120000.1234-1-dev@example.org --tree ~/src/xen "
                  "--format email -o reply.eml"))
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
    q.add_argument("--format", choices=("text", "json", "markdown", "email"), default="text",
                   help=FORMAT_HELP)
    q.add_argument("-o", "--output", metavar="FILE", help=OUTPUT_HELP)
    q.add_argument("--send", action="store_true", help="mail the replies (a dry run unless --yes)")
    q.add_argument("--yes", action="store_true", help="with --send: really send")
    q.set_defaults(handler="review")


def _add_watch(sub: Any) -> None:
    w = _command(sub, "watch", "the review bot: each new series version on a list reviewed once",
                 "xenpatch watch --source https://lore.kernel.org/xen-devel/ --tree ~/src/xen "
                 "--out replies --once")
    w.add_argument("--source", action="append", default=[], metavar="URL_OR_DIR",
                   help="a public-inbox URL (new.atom) or a public-inbox v2 git mirror; repeatable")
    w.add_argument("--once", action="store_true", help="one pass, then exit (0, 1 or 3)")
    w.add_argument("--interval", type=float, metavar="S", help="seconds between passes (300)")
    w.add_argument("--wait", type=float, default=3600.0, metavar="S",
                   help="seconds an incomplete series waits before it is reviewed as such (3600)")
    w.add_argument("--state", metavar="FILE", help="SQLite state (default: <cache>/watch.sqlite)")
    w.add_argument("--out", metavar="DIR", help="review JSON and reply .eml (./xenpatch-watch)")
    w.add_argument("--tree", metavar="DIR", help=TREE_HELP)
    w.add_argument("--base", metavar="REV", help="apply onto REV (default: base-commit:, "
                   "else [tree].base)")
    w.add_argument("--send", action="store_true", help="mail the replies (each once)")
    w.set_defaults(handler="watch")


def _add_claims(sub: Any) -> None:
    c = _command(sub, "claims", "the open cross-series ABI claims the bot has seen",
                 "xenpatch claims --format json")
    c.add_argument("--state", metavar="FILE", help="SQLite state (default: <cache>/watch.sqlite)")
    c.add_argument("--format", choices=("json", "text"), default="text", help=FORMAT_HELP)
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
        from . import atomic

        try:
            atomic.write(path, text)
        except OSError as e:
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
        "abi_diff": lazy(".abi.drift", "diff"),
        "abi_history": lazy(".abi.drift", "history"),
        "generate": lazy(".generate.command", "generate"),
        "send": lazy(".mail.command", "send"),
        "maintainers": lazy(".mail.command", "maintainers"),
        "fetch_xen": lazy(".fetchxen", "command"),
        "review": lazy(".review.command", "review"),
        "watch": lazy(".review.watchcommand", "watch"),
        "claims": lazy(".review.watchcommand", "claims"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from .progress import Silent, StderrProgress, reporting

    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a == "--verbose" or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)
    try:
        args = build_parser(argv).parse_args(argv)
        config = load_config(args.config).with_overrides(_overrides(args))
        with reporting(Silent() if args.quiet else StderrProgress()):
            outcome = _handlers()[args.handler](args, config)
        if isinstance(outcome, Result):
            if not getattr(args, "quiet", False):
                for line in outcome.messages:
                    print(line, file=sys.stderr)
            if outcome.text:
                emit(outcome.text, outcome.output)
            code = outcome.exit_code
        else:
            code = outcome
        engine = sys.modules.get("xenpatch.abi.api")
        if engine is not None:  # a command that dumped: its workers and caches end here
            engine.finish()
        return code
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


def run() -> NoReturn:
    """The ``xenpatch`` command: ``main``'s exit code, and out without the interpreter's
    teardown, which frees every object one by one: the parsed headers and models of a
    command that dumped (measured: 13-16 ms after a cold ``abi diff`` of a release pair,
    10 ms of a warm one's 0.18 s).  What a normal exit does first is done here: the exit
    handlers run (the caches' last writes, the staged copies' removal), and the output
    is flushed.  Only when no other thread is left to join (``api.finish`` stops the
    engine's) and no profiler or tracer is watching (``python -m cProfile``, a debugger,
    coverage: they report once the program returns); else, or when the output cannot be
    flushed, the normal exit."""
    code = main()
    import threading

    if sys.getprofile() is None and sys.gettrace() is None and not any(
            t.is_alive() and not t.daemon for t in threading.enumerate()
            if t is not threading.main_thread()):
        import atexit

        atexit._run_exitfuncs()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe or stream: Python's own exit says so
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
