"""The ABI engine's entry point: ``dump`` a HeaderSource into an AbiModel, per arch, cached.

Per arch (one worker process each, up to ``jobs``): stage the headers in a
private directory, classify them (applicable, not applicable, unsafe), run
cpp over all applicable ones as one translation unit, parse, lay out the
types, evaluate the macros (``macros.evaluate_macros``) and group the
families (``families.group_families``).  A header that cpp or the parser
rejects is recorded as failed and the rest is done again without it.

Not applicable (a general rule, documented in ``applies_to``): a header
whose path names another architecture, and, for the guest profiles, a
header that stops with ``#error`` there but preprocesses in the tools
profile (``domctl.h``/``sysctl.h``: "intended for use by node control tools
only").
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import UsageError
from .model import ARCHES, PROFILES, AbiModel, ArchModel, HeaderFailure, Source
from .sources import HeaderSource

# The arch families a public header path can name: arch-x86/, arch-x86_32.h,
# arch-x86/xen-x86_64.h, arch-arm.h, arch-arm/, arch-ppc.h, arch-riscv.h.
_ARCH_IN_PATH = re.compile(
    r"(?:^|/)(?:arch-([a-z0-9]+?)(?:_(32|64))?|xen-([a-z0-9]+)_(32|64))(?=[./]|$)")
_FAMILY = {"x86_32": ("x86", "32"), "x86_64": ("x86", "64"), "arm32": ("arm", "32"),
           "arm64": ("arm", "64")}


def applies_to(header: str, arch: str) -> bool:
    """Whether HEADER's path lets it belong to ARCH: every ``arch-F`` / ``xen-F_NN`` part of
    the path must name ARCH's family F (x86, arm) and, when it has a width, ARCH's width."""
    family, width = _FAMILY[arch]
    for m in _ARCH_IN_PATH.finditer(header):
        named, bits = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if named != family or (bits and bits != width):
            return False
    return True


def dump(source: HeaderSource, arches: Sequence[str] = ARCHES, profile: str = "tools", *,
         cpp: str = "cpp", cache_dir: Path | None = None, jobs: int = 0) -> AbiModel:
    """The ABI model of SOURCE's public headers on ARCHES in PROFILE."""
    bad = [a for a in arches if a not in ARCHES]
    if bad or profile not in PROFILES:
        raise UsageError(f"unknown arch or profile: {(bad or [profile])[0]!r}")
    from . import cache

    key = cache.Key.of(source, profile, cpp)
    models: dict[str, ArchModel] = {}
    for arch in arches:
        hit = cache.load(cache_dir, key, arch)
        if hit is not None:
            models[arch] = hit
    todo = [a for a in arches if a not in models]
    groups = _groups(todo, jobs or os.cpu_count() or 1)
    if len(groups) > 1:
        from concurrent.futures import ProcessPoolExecutor  # not on the warm path

        with ProcessPoolExecutor(max_workers=len(groups)) as pool:
            futures = [pool.submit(arch_models, dict(source.files), g, profile, cpp)
                       for g in groups]
            for fut in futures:
                models.update((m.arch, m) for m in fut.result())
    elif groups:
        models.update((m.arch, m) for m in arch_models(source.files, groups[0], profile, cpp))
    for arch in todo:
        cache.store(cache_dir, key, models[arch])
    return AbiModel(Source(source.description, source.rev, profile),
                    tuple(models[a] for a in arches))


def dump_json(source: HeaderSource, arches: Sequence[str] = ARCHES, profile: str = "tools", *,
              cpp: str = "cpp", cache_dir: Path | None = None, jobs: int = 0) -> str:
    """``dump(...).dumps()``; when every arch is cached, spliced from the cached text
    without building the model (the warm ``abi dump`` path)."""
    from . import cache

    key = cache.Key.of(source, profile, cpp)
    texts = {a: cache.load_text(cache_dir, key, a) for a in arches}
    if any(t is None for t in texts.values()) or len(set(arches)) != len(arches):
        return dump(source, arches, profile, cpp=cpp, cache_dir=cache_dir, jobs=jobs).dumps()
    return cache.document_text(Source(source.description, source.rev, profile),
                               {a: t for a, t in texts.items() if t is not None})


def _groups(arches: Sequence[str], workers: int) -> list[list[str]]:
    """Arches per worker: as many groups as workers, an arch family (x86, arm) kept
    together so that its arches share parsed segments."""
    if not arches:
        return []
    if workers >= len(arches):
        return [[a] for a in arches]
    groups: list[list[str]] = [[] for _ in range(min(workers, len(arches)))]
    for i, arch in enumerate(sorted(arches, key=lambda a: (_FAMILY[a][0], a))):
        groups[i * len(groups) // len(arches)].append(arch)
    return [g for g in groups if g]


def arch_models(files: Mapping[str, bytes], arches: Sequence[str], profile: str,
                cpp: str) -> list[ArchModel]:
    """The models of ARCHES (runs in a worker process)."""
    import tempfile

    from . import pipeline
    from .parse import SegmentParser

    parser = SegmentParser()
    with tempfile.TemporaryDirectory(prefix="xenpatch-abi-") as tmp:
        return [pipeline.run(files, arch, profile, cpp, Path(tmp), parser) for arch in arches]


def failure(header: str, error: str) -> HeaderFailure:
    return HeaderFailure(header, " ".join(error.split()))
