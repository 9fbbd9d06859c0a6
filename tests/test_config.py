"""Configuration: the shipped config.toml loads; precedence; bad keys are exit 2 naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import one_line_error, run_cli

from xenpatch.config import SCHEMA, load_config, shipped_defaults
from xenpatch.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_repository_config_loads_and_documents_every_key() -> None:
    path = ROOT / "config.toml"
    cfg = load_config(str(path), env={})
    text = path.read_text()
    for section, keys in SCHEMA.items():
        assert f"[{section}]" in text, f"config.toml does not document [{section}]"
        for key in keys:
            default = keys[key][1]  # config.toml shows every key with its built-in default
            assert cfg.get(section, key) == (tuple(default) if isinstance(default, list)
                                             else default), f"{section}.{key}"
            assert f"\n{key} =" in text, f"config.toml does not document {section}.{key}"


def test_shipped_defaults_need_no_config_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, env={})
    assert cfg.path is None
    changes, suppress = shipped_defaults()
    assert "sif-hvm-ghcb" in cfg.changes and cfg.changes["sif-hvm-ghcb"]["name"] == "SIF_HVM_GHCB"
    assert len(cfg.suppress) == len(suppress) > 0


def test_user_suppressions_add_to_the_shipped_ones(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('[[suppress]]\nrule = "abi-bit-collision"\nname = "FOO_*"\nreason = "mine"\n')
    cfg = load_config(str(cfg_file), env={})
    assert len(cfg.suppress) == len(shipped_defaults()[1]) + 1
    assert cfg.suppress[-1]["name"] == "FOO_*"


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('[abi]\nprofile = "guest"\njobs = 3\n[tree]\npath = "xen"\n')
    cfg = load_config(str(cfg_file), env={})
    assert cfg.get("abi", "profile") == "guest"  # file over default
    assert cfg.get("abi", "cpp") == "cpp"  # default kept
    assert cfg.resolve_path(cfg.get("tree", "path")) == tmp_path / "xen"  # relative to the file
    cfg = load_config(str(cfg_file), env={"XENPATCH_ABI_JOBS": "5", "XENPATCH_ABI_ARCHES": "x86_64,arm64"})
    assert cfg.get("abi", "jobs") == 5  # env over file
    assert cfg.get("abi", "arches") == ("x86_64", "arm64")
    cfg = cfg.with_overrides({"abi.jobs": 1, "abi.profile": None})
    assert cfg.get("abi", "jobs") == 1  # flag over env
    assert cfg.get("abi", "profile") == "guest"  # an unset flag changes nothing


@pytest.mark.parametrize("text, env, fragment", [
    ("[abi]\nprofil = 'tools'\n", {}, "unknown key abi.profil"),
    ("[abii]\n", {}, "unknown section [abii]"),
    ("[abi]\njobs = 'many'\n", {}, "abi.jobs must be a whole number"),
    ("[abi]\narches = ['x86_64', 'riscv64']\n", {}, "unknown arch 'riscv64'"),
    ("[abi]\nprofile = 'dom0'\n", {}, "abi.profile = 'dom0'"),
    ("[series]\nrfc = 1\n", {}, "series.rfc must be true or false"),
    ("[smtp]\nport = 70000\n", {}, "smtp.port"),
    ("[[suppress]]\nrule = 'abi-bit-collision'\nname = 'X'\n", {}, "suppress[0].reason"),
    ("[abi\n", {}, "not valid TOML"),
    ("", {"XENPATCH_SERIES_RFC": "maybe"}, "XENPATCH_SERIES_RFC='maybe'"),
    ("", {"XENPATCH_ABI_JOBS": "x"}, "XENPATCH_ABI_JOBS='x'"),
])
def test_bad_config_names_the_key(tmp_path: Path, text: str, env: dict, fragment: str) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(str(cfg_file), env=env)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_config_on_the_command_line_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("[abi]\njobs = -1\n")
    proc = run_cli("--config", str(cfg_file), "abi", "dump", "--tree", str(tmp_path), cwd=tmp_path)
    one_line_error(proc, 2, "abi.jobs")


def test_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    proc = run_cli("--config", str(tmp_path / "no.toml"), "abi", "dump", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"xenpatch: --config {tmp_path / 'no.toml'}: no such file"


def test_series_date_one_rule_for_commits_and_mails() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from xenpatch.config import series_date

    assert series_date("Thu, 01 Jan 2026 00:00:00 +0100", {}) == datetime(
        2026, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert series_date("2026-01-01T00:00:00", {}) == datetime(2026, 1, 1, tzinfo=UTC)
    assert series_date("", {"SOURCE_DATE_EPOCH": "1767225600"}) == datetime(2026, 1, 1, tzinfo=UTC)
    assert series_date("", {}).tzinfo is UTC
    with pytest.raises(ConfigError, match="series.date = 'soon'"):
        series_date("soon", {})
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH='x'"):
        series_date("", {"SOURCE_DATE_EPOCH": "x"})
