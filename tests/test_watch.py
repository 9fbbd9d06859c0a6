"""`xenpatch watch` over a real public-inbox (Debian's public-inbox: a v2 inbox, public-inbox-httpd on
127.0.0.1, a `git clone --mirror` of its epoch): each series version reviewed once, outputs written,
a second pass reviews nothing, a new message is picked up by the next pass (issue 8, acceptance 1)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pinbox
import pytest
from watchkit import bare_tree, commit_edit, config_file, flag_series, message_id, series_mails

from xenpatch.cli import main
from xenpatch.review.state import State

pytestmark = pytest.mark.skipif(not pinbox.available(), reason="Debian's public-inbox is needed")

def docs_series(tree: Path, base: str) -> str:
    return commit_edit(tree, base, {"README": ("Xen", "The Xen")},
                       "README: say The Xen\n\nSigned-off-by: Ada Tester <ada@example.org>")


@pytest.fixture(scope="module")
def abi_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("abicache")


@pytest.fixture
def world(xen_tree: Path, tmp_path: Path, abi_cache: Path):  # type: ignore[no-untyped-def]
    tree = bare_tree(xen_tree, tmp_path / "tree.git")
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True,
                          text=True, check=True).stdout.strip()
    inbox = pinbox.PublicInbox(tmp_path / "pi")
    return tree, base, inbox, config_file(tmp_path, tree, abi_cache)


def _deliver(inbox: pinbox.PublicInbox, mails: list[bytes]) -> list[str]:
    for m in mails:
        inbox.add(m)
    return [message_id(m) for m in mails]


def _watch(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--config", str(config), "watch", "--once", *args])
    return code, capsys.readouterr().err


def _reviews(out: Path) -> dict[tuple[str, int], dict]:  # type: ignore[type-arg]
    docs = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    return {(d["series"]["subject"], d["series"]["version"]): d for d in docs}


def test_watch_http_and_mirror(world, tmp_path: Path,  # type: ignore[no-untyped-def]
                               capsys: pytest.CaptureFixture[str]) -> None:
    tree, base, inbox, config = world
    a1 = series_mails(tree, base, flag_series(tree, base, "SIF_HVM_GHCB", 5, 1), version=1,
                      cover="Introduce SIF_HVM_GHCB")
    b = series_mails(tree, base, docs_series(tree, base))
    a2 = series_mails(tree, base, flag_series(tree, base, "SIF_HVM_GHCB", 5, 2, " (SEV-ES)"),
                      version=2, cover="Introduce SIF_HVM_GHCB", in_reply_to=message_id(a1[0]))
    c_tip = commit_edit(tree, base, {"CONTRIBUTING": ("Xen", "The Xen")},
                        "CONTRIBUTING: say The Xen\n\nSigned-off-by: Ada Tester <ada@example.org>")
    c = series_mails(tree, base, c_tip, cover="Wording")
    _deliver(inbox, a1 + b + a2 + c)
    mirror = tmp_path / "mirror"
    subprocess.run(["git", "clone", "-q", "--mirror", str(inbox.epoch), str(mirror)], check=True)

    with inbox.serving() as url:
        for source, name in ((url, "http"), (str(mirror), "mirror")):
            out, state = tmp_path / f"out-{name}", tmp_path / f"{name}.sqlite"
            opts = ("--source", source, "--out", str(out), "--state", str(state))
            code, err = _watch(config, capsys, *opts)
            assert code == 0, err
            got = _reviews(out)
            assert set(got) == {("Introduce SIF_HVM_GHCB", 1), ("Introduce SIF_HVM_GHCB", 2),
                                ("README: say The Xen", 1), ("Wording", 1)}, err
            assert got["Introduce SIF_HVM_GHCB", 2]["series"]["base_chosen_by"] == "base-commit"
            assert got["Introduce SIF_HVM_GHCB", 2]["series"]["base"] == base
            names = {c["name"] for c in got["Introduce SIF_HVM_GHCB", 2]["claims"]}
            assert names == {"SIF_HVM_GHCB"}
            rows = State(state).all_series()
            assert len(rows) == 4 and all(r.status == "reviewed" for r in rows)
            assert sum(r.superseded for r in rows) == 1  # v1 by v2
            assert err.count("reviewed '") == 4
            # A second pass reviews nothing.
            mtimes = {p: p.stat().st_mtime_ns for p in out.iterdir()}
            code, err = _watch(config, capsys, *opts)
            assert code == 0 and "reviewed '" not in err and "0 reviewed" in err
            assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes

        # A new series arrives: the next pass (of each source) reviews it, and only it.
        d_tip = commit_edit(tree, base, {"COPYING": ("GNU", "The GNU")},
                            "COPYING: say The GNU\n\nSigned-off-by: Ada Tester <ada@example.org>")
        _deliver(inbox, series_mails(tree, base, d_tip))
        subprocess.run(["git", "fetch", "-q"], cwd=mirror, check=True)
        for source, name in ((url, "http"), (str(mirror), "mirror")):
            out, state = tmp_path / f"out-{name}", tmp_path / f"{name}.sqlite"
            code, err = _watch(config, capsys, "--source", source, "--out", str(out),
                               "--state", str(state))
            assert code == 0, err
            assert err.count("reviewed '") == 1 and "COPYING: say The GNU" in err
            assert len(_reviews(out)) == 5
