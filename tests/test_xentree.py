"""Which tree a command works on: --tree from the current directory, [tree].path from the
config file's directory, else the tree scripts/fetch_xen.py caches."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from xenpatch import xentree
from xenpatch.cli import _overrides, build_parser
from xenpatch.config import load_config


def test_tree_flag_is_taken_from_the_current_directory(tmp_path: Path, monkeypatch) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    cfg_file = elsewhere / "config.toml"
    cfg_file.write_text('[tree]\npath = "xen-in-config"\n')
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["--config", str(cfg_file), "maintainers", "--tree", "xen",
                                      "MAINTAINERS"])
    cfg = load_config(args.config, env={}).with_overrides(_overrides(args))
    assert xentree.configured(cfg) == tmp_path / "xen"
    assert xentree.configured(load_config(str(cfg_file), env={})) == elsewhere / "xen-in-config"


def test_without_a_tree_the_fetched_one_under_xenpatch_cache(tmp_path: Path, monkeypatch) -> None:
    cfg = load_config(None, env={"XENPATCH_CONFIG": str(_empty_config(tmp_path))})
    monkeypatch.setenv("XENPATCH_CACHE", str(tmp_path / "cache"))
    assert xentree.fetched_path() == tmp_path / "cache" / "xen-4.17"
    assert xentree.configured(cfg) is None  # nothing there, nothing fetched
    (tmp_path / "cache" / "xen-4.17" / "xen" / "include" / "public").mkdir(parents=True)
    assert xentree.configured(cfg) == tmp_path / "cache" / "xen-4.17"
    assert xentree.resolve(cfg) == tmp_path / "cache" / "xen-4.17"


def test_maintainers_relative_tree_from_another_directory(xen_tree: Path, tmp_path: Path) -> None:
    """`xenpatch maintainers --tree REL` run outside the config file's directory."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "xen").symlink_to(xen_tree)
    proc = run_cli("--config", str(_empty_config(tmp_path)), "maintainers", "--tree", "xen",
                   "--format", "json", "tools/libs/light/libxl_dom.c", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert '"xen-devel@lists.xenproject.org"' in proc.stdout


def _empty_config(tmp_path: Path) -> Path:
    path = tmp_path / "cfgdir" / "config.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("")
    return path


@pytest.fixture(autouse=True)
def _no_inherited_tree(monkeypatch) -> None:
    monkeypatch.delenv("XENPATCH_TREE_PATH", raising=False)
