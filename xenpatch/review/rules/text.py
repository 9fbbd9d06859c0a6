"""Rules on the text a patch adds to public headers: ``vendor-term`` and ``unsafe-include``.

``vendor-term``: the public interface is meant to be vendor-agnostic
outside the per-architecture headers ("A concern I have with this is that
we are adding vendor-specific terminology to what should otherwise be a
vendor-agnostic interface", the review of SIF_HVM_GHCB in the seed
thread).  A vendor or technology name on a line added to a header under
``xen/include/public/`` that is not arch-specific (``arch-x86/``,
``arch-arm.h``, ``hvm/`` is shared by x86 and Arm and stays judged) is a
warning: a judgement call.

``unsafe-include``: an ``#include`` of an absolute path, or one whose
path leaves the tree, on an added line (an error; the file it names is
never read: the ABI engine refuses such headers and the header checks are
not run on a tree that has one).  Only the name as written in the patch
is reported.
"""

from __future__ import annotations

import posixpath
import re

from ..finding import Finding
from ..hunks import FileDiff

PUBLIC = "xen/include/public/"
# Vendor and technology names (AMD: SVM, SEV-ES, SEV-SNP, GHCB, SME, VMCB;
# Intel: VMX, VT-x, VT-d, TDX, TXT, SGX, MKTME, VMCS; Arm's TrustZone),
# matched as whole words; "_" separates words (SIF_HVM_GHCB).
VENDOR_TERMS = ("AMD", "Intel", "SEV", "SEV-ES", "SEV-SNP", "SNP", "GHCB", "SME", "SVM", "VMCB",
                "VMX", "VMCS", "VT-x", "VT-d", "TDX", "TXT", "SGX", "MKTME", "TrustZone")
_TERM = re.compile(r"(?<![A-Za-z0-9-])(" + "|".join(
    re.escape(t) for t in sorted(VENDOR_TERMS, key=len, reverse=True)) + r")(?![A-Za-z0-9])")
_INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]*)[>"]')


def arch_neutral_public(path: str) -> bool:
    """A public header that every architecture sees (not ``arch-*``, not ``xen-x86_*``)."""
    if not path.startswith(PUBLIC) or not path.endswith(".h"):
        return False
    rel = path[len(PUBLIC):]
    return not any(part.startswith("arch-") or part.startswith("xen-x86")
                   for part in rel.split("/"))


def check_vendor_terms(number: int, diff: FileDiff) -> list[Finding]:
    """One warning per run of consecutive added lines that name vendor terms (a define and
    its comment continued on the next line are one place), at the run's first line."""
    if not arch_neutral_public(diff.path):
        return []
    out: list[Finding] = []
    run: list[tuple[int, list[str]]] = []

    def flush() -> None:
        if run:
            terms = list(dict.fromkeys(t for _, ts in run for t in ts))
            out.append(Finding("vendor-term", "warning", number, diff.path, run[0][0],
                               f"vendor-specific term{'s' if len(terms) > 1 else ''} "
                               f"{', '.join(terms)} in an arch-neutral public header, whose "
                               "interface is meant to be vendor-agnostic; x86 vendor specifics "
                               "belong under arch-x86/"))
            run.clear()

    for ln in diff.added():
        terms = list(dict.fromkeys(_TERM.findall(ln.text)))
        if not terms or (run and ln.new != run[-1][0] + 1):
            flush()
        if terms and ln.new is not None:
            run.append((ln.new, terms))
    flush()
    return out


def include_problem(path: str, name: str) -> str | None:
    """Why ``#include`` of NAME in the file PATH (repository-relative) is unsafe, or None."""
    if name.startswith("/") or name.startswith("~") or "\\" in name:
        return "an absolute path"
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), name))
    if joined == ".." or joined.startswith("../"):
        return "a path that leaves the tree"
    if path.startswith(PUBLIC) and not joined.startswith(PUBLIC.rstrip("/")) and ".." in name:
        return "a path that leaves the public headers"
    return None


def check_includes(number: int, diff: FileDiff) -> list[Finding]:
    if not diff.path.endswith((".h", ".c")):
        return []
    out: list[Finding] = []
    for ln in diff.added():
        m = _INCLUDE.match(ln.text)
        if not m:
            continue
        problem = include_problem(diff.path, m.group(2))
        if problem:
            out.append(Finding("unsafe-include", "error", number, diff.path, ln.new,
                               f'#include of {problem} ("{m.group(2)}"); a public header may '
                               "only include headers of the tree, and the file named was not "
                               "read"))
    return out
