"""The on-disk cache of per-arch ABI models, keyed by everything that decides them.

Key: SHA-256 over the bytes of every header (with its path), the arch, the
profile, the identity of the cpp binary (its resolved path, size and
mtime) and of xenpatch's ABI code (version plus the size and mtime of each
``xenpatch/abi`` source file and include/ header).  Values are
``ArchModel`` JSON (compact, sorted keys), written atomically; a warm ``abi
dump`` splices the cached text into its output without building the model
(``document_text``).  Location: ``[abi].cache``, else
``$XDG_CACHE_HOME/xenpatch/abi`` (``~/.cache/xenpatch/abi``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from .model import AbiModel, ArchModel, Source
from .sources import HeaderSource

_HERE = Path(__file__).resolve().parent


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xenpatch" / "abi"


def _code_identity() -> str:
    parts = [__version__]
    for path in sorted([*_HERE.glob("*.py"), *_HERE.glob("include/**/*.h")]):
        st = path.stat()
        parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def _cpp_identity(cpp: str) -> str:
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
    def of(cls, source: HeaderSource, profile: str, cpp: str) -> Key:
        h = hashlib.sha256()
        for text in (_code_identity(), _cpp_identity(cpp), profile):
            h.update(text.encode() + b"\0")
        for rel, data in sorted(source.files.items()):
            h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0")
            h.update(data)
        return cls(h.hexdigest())

    def path(self, cache_dir: Path, arch: str) -> Path:
        return cache_dir / self.digest[:2] / f"{self.digest}-{arch}.json"


def load_text(cache_dir: Path | None, key: Key, arch: str) -> str | None:
    """The cached JSON text of ARCH's model, or None."""
    try:
        return key.path(cache_dir or default_dir(), arch).read_text(encoding="utf-8")
    except OSError:
        return None


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
    """MODEL as compact JSON with sorted keys (json's C encoder: ten times faster than
    the indented form, which only the pure-Python encoder writes)."""
    return json.dumps(model.to_json(), sort_keys=True, separators=(",", ":"))


def store(cache_dir: Path | None, key: Key, model: ArchModel) -> None:
    store_text(cache_dir, key, model.arch, arch_text(model))


def store_text(cache_dir: Path | None, key: Key, arch: str, text: str) -> None:
    """Write an arch's model TEXT under KEY; a cache that cannot be written is skipped."""
    path = key.path(cache_dir or default_dir(), arch)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        return


def document_text(source: Source, arch_texts: Mapping[str, str]) -> str:
    """The ``xenpatch-abi/1`` document of SOURCE with ARCH_TEXTS (``arch_text``) spliced
    in: compact JSON, the same document as ``AbiModel.dumps()``."""
    marks = {arch: f"\0xenpatch-arch-{arch}" for arch in arch_texts}
    doc = AbiModel(source).to_json()
    doc["arches"] = marks
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    for arch, mark in marks.items():
        text = text.replace(json.dumps(mark), arch_texts[arch], 1)
    return text + "\n"
