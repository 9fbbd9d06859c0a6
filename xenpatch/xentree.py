"""Which Xen tree a command works on: ``--tree``, else ``[tree].path``, else the fetched one.

``--tree`` reaches the config as ``tree.path`` (``cli.py`` makes it absolute
from the current directory); a ``[tree].path`` from the config file is taken
from the file's directory.  When neither is set, the documented default is
the Xen 4.17.5 tree that ``xenpatch fetch-xen`` (``fetchxen.py``) fetches from
Debian into its cache (``$XENPATCH_CACHE``, else ``$XDG_CACHE_HOME/xenpatch``).
"""

from __future__ import annotations

from pathlib import Path

from .config import Config

FETCHED = "xen-4.17"  # fetchxen's name for the whole tree


def fetched_path() -> Path:
    """Where ``xenpatch fetch-xen`` keeps the tree (``fetchxen.default_cache()``)."""
    from .fetchxen import default_cache  # the fetcher only when a command needs it

    return default_cache() / FETCHED


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
    """The fetched tree, fetched first when it is not there (``xenpatch fetch-xen xen-4.17``)."""
    from . import fetchxen

    return fetchxen.fetch(FETCHED)
