"""ABI drift on real headers: fields inside array elements, Xen's interface rules, abi history,
the CI reports and the GitLab job of examples/gitlab-ci.yml.

The rules are exercised in a git repository made from the real 4.17.5 tree's
public headers and xen/Makefile, tagged RELEASE-4.17.5, with one commit per
rule on top (tests/test_abi_drift.py builds it; nothing is mocked).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dwarf_fields  # tests/dwarf_fields.py
import probe  # tests/probe.py
import pytest
import yaml
from test_abi_compiler import model_misses

from xenpatch.abi import api, sources
from xenpatch.abi.c import preprocess as pp
from xenpatch.abi.interfaces import release_base
from xenpatch.abi.model import ARCHES

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = "xen/include/public"
IDENT = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org",
         "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.org",
         "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}


def xenpatch(*args: str, cache: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, XENPATCH_ABI_CACHE=str(cache), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "xenpatch.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd or ROOT)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=dict(os.environ, **IDENT)).stdout.strip()


def edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / PUBLIC / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


def commit(repo: Path, subject: str) -> str:
    git(repo, "commit", "-qam", subject)
    return git(repo, "rev-parse", "HEAD")


# -- the model: fields inside array elements ------------------------------------------

ARRAYS = """#ifndef T_H
#define T_H
#include <stdint.h>
struct t_nested { uint16_t n; struct { uint8_t a; uint32_t b; } grid[2][3]; };
struct t_bits { struct { uint32_t lo:3, mid:9; uint32_t hi:20; } flags[4]; uint8_t tail; };
union t_union { uint64_t raw; struct { uint16_t x, y; } pairs[2]; };
struct t_tagged { struct t_elem { uint32_t p; uint64_t q; } elems[2]; };
struct t_inner { struct { uint8_t k; struct { uint16_t v[2]; uint8_t w; } deep[2]; } outer[3]; };
#endif
"""


def test_array_elements_in_every_shape_agree_with_the_compilers(tmp_path):
    """Nested arrays, arrays of bit-field records, arrays in unions, a tagged record defined
    in the array's declaration, arrays inside array elements: the probe and the DWARF agree."""
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "xen.h").write_text(ARRAYS)
    src = sources.from_headers_dir(tmp_path / "h")
    model = api.dump(src, ARCHES, "tools", cache_dir=tmp_path / "cache")
    for arch in model.arches:
        paths = {name: {p for p, _ in arch.type_map[name].walk_fields()}
                 for name in ("struct t_nested", "struct t_bits", "union t_union",
                              "struct t_tagged", "struct t_inner")}
        assert {"grid[][].a", "grid[][].b"} <= paths["struct t_nested"]
        assert {"flags[].lo", "flags[].mid", "flags[].hi"} <= paths["struct t_bits"]
        assert {"pairs[].x", "pairs[].y"} <= paths["union t_union"]
        assert {"elems[].p", "elems[].q"} <= paths["struct t_tagged"]
        assert {"outer[].k", "outer[].deep[].v", "outer[].deep[].w"} <= paths["struct t_inner"]
        public = pp.stage(src.files, tmp_path / arch.arch)
        p = probe.build_probe(arch, ["xen.h"])
        outcome = probe.run_probe(p, "tools", public)
        assert outcome.disagreements == [] and outcome.checked > 60
        assert model_misses(arch, dwarf_fields.compiler_fields(arch.arch, ["xen.h"], "tools",
                                                               public)) == []


def test_a_field_inside_hpet_timers_is_reported_with_its_dotted_path(xen_clone, tmp_path):
    """A member of hvm_hw_hpet.timers[] retyped and one inserted, the element keeping its
    size: abi diff names both inside the element."""
    edit(xen_clone, "arch-x86/hvm/save.h",
         "        uint64_t fsb;           /* FSB route, not supported now */",
         "        uint32_t fsb;\n        uint32_t fsb_hi;")
    proc = xenpatch("abi", "diff", "HEAD", str(xen_clone), "--tree", str(xen_clone),
                    "--arch", "x86_64", "--format", "json", cache=tmp_path / "cache")
    assert proc.returncode == 1, proc.stderr
    got = {(c["kind"], c["name"], c.get("field")): c for c in json.loads(proc.stdout)["changes"]}
    retyped = got[("field-type-changed", "struct hvm_hw_hpet", "timers[].fsb")]
    assert retyped["severity"] == "breaking" and retyped["arch"] == ["x86_64"]
    assert retyped["old"] == "uint64_t (8 bytes)" and retyped["new"] == "uint32_t (4 bytes)"
    added = got[("field-added", "struct hvm_hw_hpet", "timers[].fsb_hi")]
    assert added["new"] == "uint32_t @ 20" and added["severity"] == "compatible"
    # hvm/save.h has no __XEN_TOOLS__ guard: the guest views see the record too.
    assert retyped["interface"] == "stable"
    assert not any(k[0] == "type-size-changed" for k in got)


# -- the interface rules, on a history with a release tag ------------------------------

@pytest.fixture(scope="module")
def rules_repo(xen_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A repository of the real 4.17.5 public headers (and xen/Makefile: 4.17.5), tagged
    RELEASE-4.17.5, then one commit per rule."""
    repo = tmp_path_factory.mktemp("rules") / "xen"
    shutil.copytree(xen_tree / PUBLIC, repo / PUBLIC)
    shutil.copy2(xen_tree / "xen/Makefile", repo / "xen/Makefile")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Xen 4.17.5 public headers")
    git(repo, "tag", "RELEASE-4.17.5")
    shas = {"release": git(repo, "rev-parse", "HEAD")}
    edit(repo, "vcpu.h", "struct vcpu_register_vcpu_info {\n    uint64_t mfn;",
         "struct vcpu_register_vcpu_info {\n    uint32_t mfn;")
    shas["stable"] = commit(repo, "vcpu: shrink the mfn of vcpu_register_vcpu_info")
    edit(repo, "domctl.h", "struct xen_domctl_createdomain {\n    /* IN parameters */\n"
         "    uint32_t ssidref;", "struct xen_domctl_createdomain {\n    /* IN parameters */\n"
         "    uint64_t ssidref;")
    edit(repo, "arch-x86/xen.h", "    uint32_t emulation_flags;", "    uint64_t emulation_flags;")
    shas["tools"] = commit(repo, "domctl: widen ssidref and emulation_flags")
    edit(repo, "domctl.h", "#define XEN_DOMCTL_INTERFACE_VERSION 0x00000015",
         "#define XEN_DOMCTL_INTERFACE_VERSION 0x00000016")
    edit(repo, "domctl.h", "    uint32_t max_vcpus;", "    uint64_t max_vcpus;")
    shas["bumped"] = commit(repo, "domctl: widen max_vcpus, bump the interface version")
    edit(repo, "arch-x86/xen.h", "#define VGCF_IN_KERNEL                 (1<<2)\n", "")
    shas["alias"] = commit(repo, "x86: drop VGCF_IN_KERNEL")
    edit(repo, "vcpu.h", "    uint32_t offset; /* offset within page */",
         "#if __XEN_INTERFACE_VERSION__ >= 0x00040e00\n    uint16_t offset;\n    uint16_t flags;\n"
         "#else\n    uint32_t offset; /* offset within page */\n#endif")
    shas["guarded"] = commit(repo, "vcpu: split offset for new guests")
    return {"repo": repo, **shas}


def _diff(repo: Path, old: str, new: str, cache: Path) -> tuple[int, list[dict]]:
    proc = xenpatch("abi", "diff", old, new, "--tree", str(repo), "--arch", "x86_64",
                    "--format", "json", cache=cache)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)["changes"]


@pytest.fixture(scope="module")
def rules_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_stable_break_is_breaking(rules_repo, rules_cache):
    code, changes = _diff(rules_repo["repo"], "RELEASE-4.17.5", rules_repo["stable"], rules_cache)
    size = next(c for c in changes if c["kind"] == "type-size-changed")
    assert code == 1 and size["name"] == "struct vcpu_register_vcpu_info"
    assert size["severity"] == "breaking" and size["interface"] == "stable"
    assert all(c["interface"] == "stable" for c in changes)


def test_tools_break_without_the_version_bump_is_interface_version(rules_repo, rules_cache):
    code, changes = _diff(rules_repo["repo"], rules_repo["stable"], rules_repo["tools"],
                          rules_cache)
    assert code == 1
    iv = [c for c in changes if c["kind"] == "interface-version"]
    assert iv and all(c["severity"] == "breaking" and c["interface"] == "tools"
                      and c["version_macro"] == "XEN_DOMCTL_INTERFACE_VERSION" for c in iv)
    ssidref = next(c for c in iv if c.get("field") == "ssidref")
    assert ssidref["base_kind"] == "field-type-changed"
    assert "XEN_DOMCTL_INTERFACE_VERSION since RELEASE-4.17.5 (still 0x15)" in ssidref["message"]
    # arch-x86/xen.h has no version of its own: xen_arch_domainconfig is a domctl record.
    flags = next(c for c in iv if c.get("field") == "emulation_flags")
    assert flags["header"] == "arch-x86/xen.h" and flags["name"] == "struct xen_arch_domainconfig"
    assert "struct xen_arch_domainconfig is struct xen_domctl_createdomain's arch" in \
        flags["message"]


def test_tools_break_with_the_version_bump_is_compatible(rules_repo, rules_cache):
    code, changes = _diff(rules_repo["repo"], rules_repo["tools"], rules_repo["bumped"],
                          rules_cache)
    widened = next(c for c in changes if c.get("field") == "max_vcpus")
    assert widened["severity"] == "compatible" and widened["interface"] == "tools"
    assert "XEN_DOMCTL_INTERFACE_VERSION moved 0x15 -> 0x16 since RELEASE-4.17.5" in \
        widened["message"]
    assert not [c for c in changes if c["severity"] == "breaking"] and code == 0


def test_removed_alias_is_an_api_change(rules_repo, rules_cache):
    code, changes = _diff(rules_repo["repo"], rules_repo["bumped"], rules_repo["alias"],
                          rules_cache)
    (gone,) = changes
    assert (gone["kind"], gone["severity"], gone["name"]) == \
        ("macro-alias-removed", "compatible", "VGCF_IN_KERNEL")
    assert "API change, not an ABI break" in gone["message"]
    assert "VGCF_in_kernel" in gone["message"] and code == 0


def test_guarded_change_is_compatible(rules_repo, rules_cache):
    code, changes = _diff(rules_repo["repo"], rules_repo["alias"], rules_repo["guarded"],
                          rules_cache)
    offset = next(c for c in changes if c.get("field") == "offset")
    assert offset["kind"] == "field-type-changed" and offset["interface"] == "stable"
    assert offset["severity"] == "compatible" and "__XEN_INTERFACE_VERSION__" in offset["message"]
    assert code == 0, changes


def test_release_base_follows_the_development_cycle():
    tags = ["RELEASE-4.21.0", "RELEASE-4.21.1", "RELEASE-4.22.0"]

    def mk(sub: int, extra: str) -> bytes:
        return (f"export XEN_VERSION       = 4\nexport XEN_SUBVERSION    = {sub}\n"
                f"export XEN_EXTRAVERSION ?= {extra}$(XEN_VENDORVERSION)\n").encode()

    def never() -> None:
        raise AssertionError("git describe asked although the tag is known")

    assert release_base(mk(22, ".0"), tags, never) == "RELEASE-4.21.0"
    assert release_base(mk(22, "-rc"), tags, never) == "RELEASE-4.21.0"
    assert release_base(mk(23, "-unstable"), tags, never) == "RELEASE-4.22.0"
    assert release_base(mk(21, ".1"), tags, never) == "RELEASE-4.21.0"
    assert release_base(mk(17, ".5"), tags, lambda: "RELEASE-4.17.5") == "RELEASE-4.17.5"
    assert release_base(None, tags, lambda: None) is None


# -- abi history -------------------------------------------------------------------------

def test_history_lists_each_commit_oldest_first_and_a_rerun_parses_nothing(rules_repo, tmp_path):
    repo, cache = rules_repo["repo"], tmp_path / "cache"
    proc = xenpatch("abi", "history", "--tree", str(repo), "--arch", "x86_64", "--format",
                    "json", cache=cache)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "xenpatch-abihistory/1" and doc["range"] == "RELEASE-4.17.5..HEAD"
    assert [c["commit"] for c in doc["commits"]] == [rules_repo[k] for k in (
        "stable", "tools", "bumped", "alias", "guarded")]
    kinds = [{ch["kind"] for ch in c["changes"]} for c in doc["commits"]]
    assert "type-size-changed" in kinds[0] and "interface-version" in kinds[1]
    assert "interface-version" not in kinds[2] and kinds[3] == {"macro-alias-removed"}
    assert doc["commits"][1]["subject"] == "domctl: widen ssidref and emulation_flags"
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    models = sorted(p.name for p in cache.rglob("*.json"))
    pieces = _pieces(cache)
    again = xenpatch("abi", "history", "--tree", str(repo), "--arch", "x86_64", "--format",
                     "json", cache=cache)
    assert again.stdout == proc.stdout
    # Nothing new was parsed or dumped: every model and piece came from the caches.
    assert sorted(p.name for p in cache.rglob("*.json")) == models and _pieces(cache) == pieces
    overlap = xenpatch("abi", "history", f"{rules_repo['tools']}..{rules_repo['alias']}",
                       "--tree", str(repo), "--arch", "x86_64", "--format", "markdown",
                       cache=cache)
    assert overlap.returncode == 0, overlap.stderr
    assert sorted(p.name for p in cache.rglob("*.json")) == models and _pieces(cache) == pieces
    assert overlap.stdout.startswith(f"## ABI history `{rules_repo['tools']}..")
    assert "\n### compatible" not in overlap.stdout and "\n#### compatible" in overlap.stdout


def _pieces(cache: Path) -> int:
    import sqlite3

    total = 0
    for db in cache.glob("pieces-*.sqlite"):
        con = sqlite3.connect(db)
        total += con.execute("SELECT count(*) FROM piece").fetchone()[0]
        con.close()
    return total


def test_a_diff_of_two_revisions_is_read_ahead(rules_repo, tmp_path):
    """``abi diff REV REV --tree`` on two workers: a process forked for it reads both
    revisions and the release tag (``api.read_ahead``) while this process imports the
    engine, which then never imports GitPython; the diff is the one a single process
    that reads them itself gives (-j 1).  A bad revision is one line, exit 2, from the
    reader as from this process."""
    repo = rules_repo["repo"]
    args = ["abi", "diff", "RELEASE-4.17.5", str(rules_repo["tools"]), "--tree", str(repo),
            "--format", "json"]
    one = xenpatch(*args, "-j", "1", "-o", str(tmp_path / "one.json"), cache=tmp_path / "c1")
    assert one.returncode == 1, one.stderr
    probe = ("import sys\nfrom xenpatch import cli\nrc = cli.main(sys.argv[1:])\n"
             "print(rc, 'git' in sys.modules)\n")
    env = dict(os.environ, XENPATCH_ABI_CACHE=str(tmp_path / "c2"), PYTHONPATH=str(ROOT))
    two = subprocess.run([sys.executable, "-c", probe, *args, "-j", "2", "-o",
                          str(tmp_path / "two.json")], capture_output=True, text=True, env=env,
                         cwd=ROOT)
    assert two.stdout.split() == ["1", "False"], two.stderr
    assert (tmp_path / "two.json").read_text() == (tmp_path / "one.json").read_text()
    for specs in (("nope", str(rules_repo["tools"])), ("RELEASE-4.17.5", "nope")):
        bad = xenpatch("abi", "diff", *specs, "--tree", str(repo), "-j", "2",
                       cache=tmp_path / "c3")
        assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr
        assert "'nope'" in bad.stderr and "Traceback" not in bad.stderr


def test_history_of_a_bad_range_is_one_line(rules_repo, tmp_path):
    proc = xenpatch("abi", "history", "nope..HEAD", "--tree", str(rules_repo["repo"]),
                    cache=tmp_path / "cache")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "nope..HEAD" in proc.stderr and "Traceback" not in proc.stderr


# -- CI: the GitLab job and its reports --------------------------------------------------

# GitLab's Code Quality report format (docs.gitlab.com/ci/testing/code_quality/,
# "Code Quality report format"): a JSON array of objects with these keys; the
# Code Climate spec (github.com/codeclimate/platform, SPEC.md "Issues") requires
# type, check_name, description, categories and location.
GITLAB_REQUIRED = ("description", "check_name", "fingerprint", "severity", "location")
CODECLIMATE_REQUIRED = ("type", "check_name", "description", "categories", "location")
SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


def validate_codeclimate(doc: object) -> None:
    assert isinstance(doc, list)
    seen = set()
    for issue in doc:
        for key in GITLAB_REQUIRED + CODECLIMATE_REQUIRED:
            assert key in issue, (key, issue)
        assert issue["severity"] in SEVERITIES and issue["type"] == "issue"
        assert isinstance(issue["location"]["path"], str)
        assert isinstance(issue["location"]["lines"]["begin"], int)
        assert issue["location"]["lines"]["begin"] >= 1
        assert issue["fingerprint"] not in seen
        seen.add(issue["fingerprint"])


def test_gitlab_job_runs_its_script_and_fails_on_breaking(rules_repo, tmp_path):
    job = yaml.safe_load((ROOT / "examples/gitlab-ci.yml").read_text())["abi-drift"]
    assert job["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"
    work = tmp_path / "project"
    subprocess.run(["git", "clone", "-q", str(rules_repo["repo"]), str(work)], check=True)
    bindir = tmp_path / "bin"  # `xenpatch` on PATH, as the job's before_script installs it
    bindir.mkdir()
    (bindir / "xenpatch").write_text(f"#!/bin/sh\nexec {sys.executable} -m xenpatch.cli "
                                     "\"$@\"\n")
    (bindir / "xenpatch").chmod(0o755)

    def run_job(base: str, head: str) -> subprocess.CompletedProcess:
        git(work, "checkout", "-q", head)
        env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT),
                   CI_MERGE_REQUEST_DIFF_BASE_SHA=base, CI_COMMIT_SHA=head,
                   CI_PROJECT_DIR=str(work), XENPATCH_ABI_CACHE=str(tmp_path / "cache"),
                   XENPATCH_ABI_ARCHES="x86_64")
        script = "set -e\n" + "\n".join(job["script"]) + "\n"
        return subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                              text=True)

    broken = run_job(rules_repo["release"], rules_repo["tools"])
    assert broken.returncode == 1, broken.stderr
    report = json.loads((work / "gl-code-quality-report.json").read_text())
    validate_codeclimate(report)
    assert {i["check_name"] for i in report} >= {"xenpatch/interface-version",
                                                 "xenpatch/type-size-changed"}
    assert any(i["severity"] == "critical" and i["location"]["path"] == f"{PUBLIC}/domctl.h"
               for i in report)
    note = (work / "abi-drift.md").read_text()
    assert note.startswith("## ABI drift") and "### breaking" in note and "<details>" in note
    ok = run_job(rules_repo["bumped"], rules_repo["guarded"])
    assert ok.returncode == 0, ok.stderr
    validate_codeclimate(json.loads((work / "gl-code-quality-report.json").read_text()))
    # The fingerprints are stable: the same diff gives the same report.
    first = json.loads((work / "gl-code-quality-report.json").read_text())
    assert run_job(rules_repo["bumped"], rules_repo["guarded"]).returncode == 0
    again = json.loads((work / "gl-code-quality-report.json").read_text())
    assert first and [i["fingerprint"] for i in first] == [i["fingerprint"] for i in again]


def test_history_draws_a_progress_bar_on_a_terminal(rules_repo, tmp_path):
    """stderr a terminal: a bar redrawn in place, erased at the end; -q: nothing."""
    import pty

    def run(*extra: str) -> bytes:
        master, slave = pty.openpty()
        env = dict(os.environ, XENPATCH_ABI_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", "xenpatch.cli", *extra, "abi", "history",
                                 "--tree", str(rules_repo["repo"]), "--arch", "x86_64"],
                                stdout=subprocess.DEVNULL, stderr=slave, env=env)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        proc.wait()
        os.close(master)
        assert proc.returncode == 1
        return seen

    drawn = run()
    assert b"\r  abi history " in drawn and b"5/5" in drawn and b"domctl: widen ssidref" in drawn
    assert drawn.endswith(b"100%\r\n")  # the finished bar stays, its line ended
    assert run("-q") == b""


def test_the_event_store_keeps_the_events_used_last(tmp_path):
    from xenpatch.abi.ci_report import CommitEvents
    from xenpatch.abi.history import EventStore

    store = EventStore(tmp_path, "salt")
    store.MAX_EVENTS = 3
    for i in range(3):
        store.put(CommitEvents(f"c{i}", f"subject {i}", ()), "p", f"c{i}")
    files = sorted((tmp_path / "history").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    for i, path in enumerate(files):  # c0 oldest; then c0 is read: the newest use
        os.utime(path, ns=(i * 10**9, i * 10**9))
    assert store.get("p", "c0").subject == "subject 0"
    later = EventStore(tmp_path, "salt")
    later.MAX_EVENTS = 3
    later.put(CommitEvents("c3", "subject 3", ()), "p", "c3")
    assert len(list((tmp_path / "history").glob("*.json"))) == 3
    assert later.get("p", "c1") is None  # the least recently used went
    assert [later.get("p", c).subject for c in ("c0", "c2", "c3")] == \
        ["subject 0", "subject 2", "subject 3"]
