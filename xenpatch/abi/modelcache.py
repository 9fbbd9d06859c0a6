"""The model cache: per-arch ABI models on disk, keyed by everything that decides them.

Key: SHA-256 over the bytes of every header (with its path), the arch, the
profile, the identity of the cpp binary (its resolved path, size and
mtime) and of xenpatch's ABI code (version plus the size and mtime of each
``xenpatch/abi`` source file and include/ header).  Values are
``ArchModel`` JSON (compact, sorted keys), written atomically; a warm ``abi
dump`` splices the cached text into its output without building the model
(``document_text``; both tricks are ``c.fast``'s).  What each piece of
preprocessed text parsed to is kept beside the models by ``segments``, and
the declarations and macro dependencies of the first and the last tree a
process dumped by ``c.reuse``.

Location: ``[abi].cache``, else ``$XDG_CACHE_HOME/xenpatch/abi``
(``~/.cache/xenpatch/abi``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .. import __version__, atomic
from . import sources
from .c import fast
from .model import AbiModel, ArchModel, Source
from .sources import HeaderSource

_HERE = Path(__file__).resolve().parent


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xenpatch" / "abi"


# What decides a model: the front end (abi/c/ and its bundled headers) and the
# engine modules that assemble it.  The rules on the model (check, diff,
# interfaces, history, reports) do not, so editing them keeps cached models.
_MODEL_MODULES = ("api.py", "arch.py", "families.py", "model.py", "modelcache.py",
                  "segments.py", "sources.py")


@cache
def code_identity(with_rules: bool = False) -> str:
    """Names, sizes and mtimes of the code that decides a model (WITH_RULES: every module
    of abi/, for stores of rated results such as abi history's events).  Read once: the
    code a process runs is the code it imported, whatever the files become (each key of
    a command asked again: 18 globs of abi/ in a cold ``abi diff``)."""
    parts = [__version__]
    if with_rules:
        files = [*_HERE.rglob("*.py")]
    else:
        files = [*(_HERE / "c").rglob("*.py"), *(_HERE / m for m in _MODEL_MODULES)]
    for path in sorted([*files, *_HERE.glob("c/include/**/*.h")]):
        st = path.stat()
        parts.append(f"{path.relative_to(_HERE)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def cpp_identity(cpp: str) -> str:
    found = shutil.which(cpp)
    if found is None:
        return f"missing:{cpp}"
    real = os.path.realpath(found)
    st = os.stat(real)
    return f"{real}:{st.st_size}:{st.st_mtime_ns}"


@dataclass(frozen=True)
class Key:
    digest: str  # without the arch

    @classmethod
    def of(cls, source: HeaderSource, profile: str, cpp: str,
           roots: Sequence[str] | None = None) -> Key:
        h = hashlib.sha256()
        for text in (code_identity(), cpp_identity(cpp), profile):
            h.update(text.encode() + b"\0")
        if roots is not None:  # a partial model (api.dump's ROOTS)
            h.update(b"roots\0" + "\0".join(roots).encode() + b"\0\0")
        h.update(b"files\0" + sources.digest(source.files).encode())  # paths and content
        return cls(h.hexdigest())

    def path(self, cache_dir: Path, arch: str) -> Path:
        return cache_dir / self.digest[:2] / f"{self.digest}-{arch}.json"


# Arch models kept (about 0.2-0.8 MB each): the 32 snapshots of 4 arches used
# last.  Entries are touched when read, so the least recently used go first.
MAX_MODELS = 128


def load_text(cache_dir: Path | None, key: Key, arch: str) -> str | None:
    """The cached JSON text of ARCH's model, or None."""
    path = key.path(cache_dir or default_dir(), arch)
    try:
        text = path.read_text(encoding="utf-8")
        os.utime(path)
    except OSError:
        return None
    return text


def prune(cache_dir: Path | None, keep: int = MAX_MODELS) -> int:
    """Remove all but the KEEP most recently used arch models; the number removed."""
    return keep_newest((cache_dir or default_dir()).glob("??/*.json"), keep)


def keep_newest(paths: Iterable[Path], keep: int) -> int:
    """Remove all of PATHS but the KEEP most recently used (by mtime: readers touch what
    they use); the number removed."""
    entries = []
    for path in paths:
        try:
            entries.append((path.stat().st_mtime_ns, path))
        except OSError:  # removed by a concurrent run
            continue
    entries.sort()
    stale = entries[:max(0, len(entries) - keep)]
    for _, path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def load(cache_dir: Path | None, key: Key, arch: str) -> ArchModel | None:
    """The cached model, or None (a missing or unreadable entry is a miss)."""
    text = load_text(cache_dir, key, arch)
    if text is None:
        return None
    try:
        return ArchModel.from_json(arch, json.loads(text))
    except (ValueError, KeyError, TypeError):
        return None


def arch_text(model: ArchModel) -> str:
    """MODEL as compact JSON with sorted keys (``fast.compact_json``)."""
    return fast.compact_json(model.to_json())


def store(cache_dir: Path | None, key: Key, model: ArchModel) -> None:
    store_text(cache_dir, key, model.arch, arch_text(model))


def store_text(cache_dir: Path | None, key: Key, arch: str, text: str) -> None:
    """Write an arch's model TEXT under KEY; a cache that cannot be written is skipped."""
    store_texts(cache_dir, key, {arch: text})


def store_texts(cache_dir: Path | None, key: Key, texts: Mapping[str, str]) -> None:
    """Write the model TEXTS (arch -> text) of one snapshot under KEY, then prune once
    (a glob of the whole cache: once per dump, not once per arch); a cache that cannot
    be written is skipped."""
    written = [atomic.write_cache(key.path(cache_dir or default_dir(), arch), text)
               for arch, text in texts.items()]
    if any(written):
        try:
            prune(cache_dir)
        except OSError:
            return


def document_text(source: Source, arch_texts: Mapping[str, str]) -> str:
    """The ``xenpatch-abi/1`` document of SOURCE with ARCH_TEXTS (``arch_text``) spliced
    in: compact JSON, the same document as ``AbiModel.dumps()``."""
    return fast.splice_arches(AbiModel(source).to_json(), arch_texts) + "\n"
