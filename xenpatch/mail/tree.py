"""The I/O side of ``maintainers``: find the tree, read its MAINTAINERS, files and patches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import xentree
from ..config import Config
from ..errors import ConfigError, InputError
from . import maintainers as mt

# A file this big is not a patch or source file a person mails; refuse rather than read it.
MAX_INPUT_BYTES = 64 * 1024 * 1024
PATCH_SUFFIXES = (".patch", ".diff", ".mbox", ".eml")


def resolve_tree(config: Config) -> Path:
    """``[tree].path`` (or ``--tree``), else the Xen tree scripts/fetch_xen.py caches."""
    tree = xentree.configured(config)
    if tree is None:
        raise ConfigError(f"default tree {xentree.fetched_path()} (set [tree].path or --tree): "
                          "no such directory")
    if not tree.is_dir():
        raise ConfigError(f"tree.path {config.get('tree', 'path')}: no such directory")
    return tree


def load_maintainers(tree: Path) -> mt.Maintainers:
    path = tree / "MAINTAINERS"
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from e
    return mt.parse_maintainers(text, lambda rel: (tree / rel).is_dir(), str(path))


def load_rules(tree: Path) -> mt.ScriptRules:
    """Which generation of get_maintainer.pl the tree ships (its THE REST rules)."""
    script = tree / "scripts" / "get_maintainer.pl"
    return mt.ScriptRules.of_script(read_text(script) if script.is_file() else None)


def read_text(path: Path) -> str:
    """A file's bytes as latin-1 (one character per byte, as the Perl script sees them)."""
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise InputError(f"{path}: larger than {MAX_INPUT_BYTES // 2**20} MiB")
        return path.read_bytes().decode("latin-1")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from e


def is_patch_argument(arg: str, tree: Path) -> bool:
    """Whether a PATCH_OR_PATH argument names a patch (else it is a path in TREE).

    A patch is an existing file (relative to the current directory) that lies
    outside TREE, or one inside it whose name ends like a patch and which
    holds a diff.  Anything else is a path relative to TREE, like
    ``get_maintainer.pl -f``.
    """
    path = Path(arg)
    if not path.is_file():
        return False
    try:
        path.resolve().relative_to(tree.resolve())
    except ValueError:
        return True
    return arg.endswith(PATCH_SUFFIXES) and "\n+++ " in read_text(path)


def tree_relative(arg: str, tree: Path) -> str:
    """ARG as a path relative to TREE (directories with a trailing ``/``, as the script does)."""
    path = Path(arg)
    full = path if path.is_absolute() else tree / path
    try:
        rel = full.resolve().relative_to(tree.resolve()).as_posix()
    except ValueError as e:
        raise InputError(f"{arg}: not inside the tree {tree}") from e
    if full.is_dir():
        return "" if rel == "." else rel.rstrip("/") + "/"
    if not full.is_file():
        raise InputError(f"{arg}: no such file in the tree {tree}")
    return rel


def recipients_for(tree: Path, args: Sequence[str]) -> mt.Recipients:
    """get_maintainer.pl on ARGS: all patches (patch mode) or all paths (``-f`` mode)."""
    return to_unicode(_recipients_bytes(tree, args))


def to_unicode(found: mt.Recipients) -> mt.Recipients:
    """Recipients computed on one-character-per-byte text, back in UTF-8."""
    return mt.Recipients(tuple(_utf8(a) for a in found.to), tuple(_utf8(a) for a in found.cc))


def _utf8(text: str) -> str:
    # Back from one-character-per-byte to the UTF-8 MAINTAINERS is written in.
    return text.encode("latin-1").decode("utf-8", errors="replace")


def _recipients_bytes(tree: Path, args: Sequence[str]) -> mt.Recipients:
    maint = load_maintainers(tree)
    patches = [a for a in args if is_patch_argument(a, tree)]
    if patches and len(patches) != len(args):
        raise InputError(f"{patches[0]}: give either patches or paths, not both")
    if patches:
        return mt.for_patches(maint, [(name, read_text(Path(name))) for name in patches],
                              load_rules(tree))
    paths = [tree_relative(a, tree) for a in args]
    contents = {p: read_text(tree / p) for p in paths if p and not p.endswith("/")}
    return mt.for_paths(maint, paths, contents, load_rules(tree))
