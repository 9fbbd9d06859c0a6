"""The package's bytecode, written before a bench times ``python -m xenpatch.cli`` processes.

``pip install`` compiles every module of the wheel it installs; a checkout
has only the .pyc files earlier runs left, and none at all where
``PYTHONDONTWRITEBYTECODE`` is set (this machine's environment sets it), so a
module edited since, or every module of a fresh worktree, would be compiled
again in each timed process (measured: 0.05-0.08 s of a cold ``abi diff``).
"""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_package() -> None:
    """Bring xenpatch's .pyc files up to date, as an install would have them."""
    if not compileall.compile_dir(str(ROOT / "xenpatch"), quiet=1):
        raise SystemExit("bench: xenpatch does not compile")
