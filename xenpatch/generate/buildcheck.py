"""Self-check (e), ``--build-check``: libxenguest, libxl and xl compile on the patched tree.

Runs in a scratch checkout of the generated branch: Xen's top-level
``./configure`` with everything optional disabled (no hypervisor, stubdoms,
docs, firmware, QEMU, OCaml, Go), ``make -C tools/include``, the libraries
of ``tools/libs`` (its Makefile builds them in dependency order: toolcore
... ctrl, guest, store, light, util) and ``tools/xl``.  Needs gcc, make,
pkgconf, python3-dev, uuid-dev, libyajl-dev, zlib1g-dev, libncurses-dev,
acpica-tools and the compression -dev packages (bz2, lzma, zstd, lzo2).

For a toolstack option, the check then probes libxl's validation as the
series rendered it: ``templates/generate/check/validation.c.j2`` puts the
``static bool OPTION_is_valid()`` of libxl_x86.c and of libxl_arm.c into a
program built against the tree's ``libxl_internal.h`` and ``libxenlight.a``,
and runs them on build infos made by libxl's own init functions: set on Arm,
with a conflicting option (pvshim) or on a refused guest type, the option
must take the error path with a LOG(ERROR) line; elsewhere it must pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import gitrepo, proc
from ..errors import InputError
from .selfcheck import CheckResult
from .spec import ChangeSpec

CONFIGURE_ARGS = (
    "--disable-xen", "--disable-stubdom", "--disable-docs", "--disable-monitors",
    "--disable-ocamltools", "--disable-golang", "--disable-xsmpolicy", "--disable-seabios",
    "--disable-ipxe", "--disable-rombios", "--disable-qemu-traditional", "--disable-pvshim",
    "--disable-systemd", "--with-system-qemu=/bin/false", "--with-system-seabios=/bin/false",
)
TIMEOUT = 1800.0


def build_steps(jobs: int) -> tuple[tuple[str, list[str]], ...]:
    j = f"-j{jobs}"
    return (
        ("configure", ["./configure", *CONFIGURE_ARGS]),
        ("tools/include", ["make", "-C", "tools/include", j]),
        ("tools/libs", ["make", "-C", "tools/libs", j]),
        ("tools/xl", ["make", "-C", "tools/xl", j]),
    )


def _first_error(output: str) -> str:
    lines = output.splitlines()
    for line in lines:
        if "error" in line.lower() and not line.lstrip().startswith("checking"):
            return line.strip()
    return (lines or ["(no output)"])[-1].strip()


def build_tree(src: Path, jobs: int = 0) -> CheckResult:
    """Build libxenguest, libxl and xl in the checked-out Xen tree SRC."""
    jobs = jobs or os.cpu_count() or 1
    done = []
    for name, argv in build_steps(jobs):
        res = proc.run(argv, cwd=src, timeout=TIMEOUT)
        if res.returncode != 0:
            return CheckResult("build", False, f"{name} failed",
                               (_first_error(res.stderr + "\n" + res.stdout),))
        done.append(name)
    return CheckResult("build", True, "libxenguest, libxl and xl build", (", ".join(done),))


def build_check(work: Path, scratch: gitrepo.git.Repo, head: str) -> CheckResult:
    """Check out HEAD of the scratch repository under WORK and build it."""
    tree = work / "build"
    clone = gitrepo.scratch_clone(scratch, tree, bare=False)
    gitrepo.checkout(clone, head)
    return build_tree(tree)


# --- the validation probe ----------------------------------------------------

# What libxenlight.a needs besides the tree's own libraries (the -dev packages
# of the module docstring); --as-needed drops what a tree does not use.
SYSTEM_LIBS = ("-lyajl", "-luuid", "-lz", "-llzma", "-lbz2", "-lzstd", "-llzo2", "-lutil",
               "-lpthread", "-lm", "-ldl")


@dataclass(frozen=True)
class Case:
    name: str
    arch: str  # "x86" | "arm": which rendered function
    type: str  # pv | pvh | hvm
    value: int  # the option: 1, 0, or -1 (left at its default)
    conflicts: dict[str, int]  # "pvh.pvshim" -> 1
    valid: bool  # what the change's rules say


def cases(spec: ChangeSpec) -> tuple[Case, ...]:
    """The probe's cases and their expected outcome, from the change's own rules."""
    ts = spec.toolstack
    assert ts is not None
    opt = ts.option
    out = [Case(f"x86 pvh {opt}=0", "x86", "pvh", 0, {}, True),
           Case(f"x86 pvh {opt}=1", "x86", "pvh", 1, {}, True)]
    for other in ("hvm", "pv"):
        out.append(Case(f"x86 {other} {opt}=1", "x86", other, 1, {},
                        ts.only_type in (None, other)))
    for c in ts.conflicts:
        member = c.split(".")[1]
        out.append(Case(f"x86 {c.split('.')[0]} {opt}=1 {member}=1", "x86", c.split(".")[0], 1,
                        {c: 1}, False))
    out += [Case(f"arm pvh {opt} unset", "arm", "pvh", -1, {}, True),
            Case(f"arm pvh {opt}=0", "arm", "pvh", 0, {}, True),
            Case(f"arm pvh {opt}=1", "arm", "pvh", 1, {}, False)]
    return tuple(out)


def rendered_function(text: str, name: str, path: str) -> str:
    """The function NAME as the series rendered it into PATH (its comment excluded)."""
    m = re.search(rf"^static bool {re.escape(name)}\(.*?^\}}\n", text, re.M | re.S)
    if m is None:
        raise InputError(f"{path}: the series has no 'static bool {name}(' to probe")
    return m.group(0)


def probe_validation(tree: Path, spec: ChangeSpec, work: Path) -> CheckResult | None:
    """Compile the rendered validation against the built TREE and run its cases."""
    from .render import make_env, render
    ts = spec.toolstack
    fn = f"{ts.option}_is_valid" if ts else ""
    light = tree / "tools/libs/light"
    x86 = rendered_function((light / "libxl_x86.c").read_text(), fn, "libxl_x86.c")
    arm = rendered_function((light / "libxl_arm.c").read_text(), fn, "libxl_arm.c")
    todo = cases(spec)
    source = render(make_env(), "check/validation.c.j2", fn=fn, x86=x86, arm=arm,
                    option=ts.option if ts else "", conflicts=ts.conflicts if ts else (),
                    cases=todo)
    (work / "probe.c").write_text(source)
    libs = sorted(str(p) for p in (tree / "tools/libs").glob("*/*.a"))
    argv = ["gcc", "-std=gnu99", "-Wall", "-Werror", "-include", str(tree / "tools/config.h"),
            "-D__XEN_TOOLS__", f"-I{light}", f"-I{tree / 'tools/include'}", str(work / "probe.c"),
            "-o", str(work / "probe"), "-Wl,--start-group", *libs, "-Wl,--end-group",
            "-Wl,--as-needed", *SYSTEM_LIBS]
    res = proc.run(argv, cwd=work, timeout=120.0)
    if res.returncode != 0:
        return CheckResult("build", False, "the validation probe does not compile",
                           (_first_error(res.stderr),))
    run = proc.run([str(work / "probe")], cwd=work, timeout=60.0)
    got = dict(line[5:].rsplit(": ", 1) for line in run.stdout.splitlines()
               if line.startswith("CASE "))
    logs = _logs_by_case(run.stderr)
    bad = []
    for c in todo:
        want = "valid" if c.valid else "invalid"
        if got.get(c.name) != want:
            bad.append(f"{c.name}: {got.get(c.name, 'no answer')}, expected {want}")
        elif not c.valid and not any("libxl: error:" in line for line in logs.get(c.name, [])):
            bad.append(f"{c.name}: refused without a LOG(ERROR) line")
    if run.returncode != 0 or bad:
        return CheckResult("build", False, "the validation takes the wrong path",
                           tuple(bad) or (f"probe exit {run.returncode}",))
    refused = [f"{c.name}: {LOG_PREFIX.sub('', logs[c.name][-1])}" for c in todo if not c.valid]
    return CheckResult("build", True, "", (f"validation: {len(todo)} cases as expected",
                                           *refused))


LOG_PREFIX = re.compile(r"^libxl: error: \S+: ")  # libxl's logger: FILE:LINE:FUNCTION:


def _logs_by_case(stderr: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in stderr.splitlines():
        if line.startswith("CASE "):
            current = line[5:]
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def checker(spec: ChangeSpec) -> Callable[[Path, gitrepo.git.Repo, str], CheckResult]:
    """``--build-check`` for SPEC: build, then (for a toolstack option with libxl's
    validation) probe the validation's error paths."""
    probe = spec.toolstack is not None and any("libxl" in p.parts for p in spec.patches)

    def check(work: Path, scratch: gitrepo.git.Repo, head: str) -> CheckResult:
        built = build_check(work, scratch, head)
        if not built.ok or not probe:
            return built
        probed = probe_validation(work / "build", spec, work)
        if probed is None:
            return built
        if not probed.ok:
            return probed
        return CheckResult("build", True, built.summary + "; the validation takes its "
                           "error paths", built.details + probed.details)
    return check
