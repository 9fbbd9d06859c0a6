"""Which Xen tree a command works on: ``--tree``, else ``[tree].path``, else the fetched one.

``--tree`` reaches the config as ``tree.path`` (``cli.py`` makes it absolute
from the current directory); a ``[tree].path`` from the config file is taken
from the file's directory.  When neither is set, the documented default is
the Xen 4.17.5 tree that ``scripts/fetch_xen.py`` fetches from Debian into
its cache (``$XENPATCH_CACHE``, else ``$XDG_CACHE_HOME/xenpatch``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import proc
from .config import Config
from .errors import ConfigError, EnvironmentFailure

FETCHED = "xen-4.17"  # scripts/fetch_xen.py's name for the whole tree


def fetched_path() -> Path:
    """Where scripts/fetch_xen.py keeps the tree (its default_cache())."""
    cache = os.environ.get("XENPATCH_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xenpatch"
    return Path(cache) / FETCHED


def configured(config: Config) -> Path | None:
    """``[tree].path``, else the fetched tree if it is there, else None (nothing is fetched)."""
    value = config.get("tree", "path")
    if value:
        return config.resolve_path(value)
    tree = fetched_path()
    return tree if (tree / "xen" / "include" / "public").is_dir() else None


def resolve(config: Config) -> Path:
    """``[tree].path``, else the fetched tree, fetching it first when it is not there yet."""
    return configured(config) or fetch()


def fetch() -> Path:
    """Run scripts/fetch_xen.py (a no-op when its cache has the tree) and return the tree."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "fetch_xen.py"
    if not script.is_file():
        raise ConfigError("tree.path is empty and scripts/fetch_xen.py is not available: "
                          "set [tree].path or pass --tree")
    res = proc.run([sys.executable, str(script), FETCHED], timeout=1800)
    words = res.stdout.split()
    if res.returncode != 0 or len(words) < 2:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentFailure(f"scripts/fetch_xen.py {FETCHED}: {last}")
    return Path(words[1])
