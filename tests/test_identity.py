"""One identity for every command: [identity], else git's user.*; mail's From: as git send-email."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenpatch import identity
from xenpatch.config import load_config
from xenpatch.errors import ConfigError

GIT = {"user.name": "Git User", "user.email": "git@example.org"}


def _config(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.toml"
    path.write_text(body)
    return load_config(str(path), env={})


def test_config_wins_key_by_key(tmp_path: Path) -> None:
    cfg = _config(tmp_path, '[identity]\nname = "Ada Tester"\n')
    assert identity.resolve(cfg, GIT) == identity.Identity("Ada Tester", "git@example.org")
    cfg = _config(tmp_path, '[identity]\nname = "Ada"\nemail = "ada@example.org"\n')
    assert identity.resolve(cfg, GIT).address == "Ada <ada@example.org>"
    assert identity.mail_from(cfg, {**GIT, "sendemail.from": "S <s@example.org>"}) == \
        "Ada <ada@example.org>"


def test_mail_from_follows_git_send_email(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "")
    assert identity.mail_from(cfg, GIT) == "Git User <git@example.org>"
    assert identity.mail_from(cfg, {**GIT, "sendemail.from": "Sender <s@example.org>"}) == \
        "Sender <s@example.org>"
    assert identity.mail_from(cfg, {"user.email": "Q.R@example.org", "user.name": "Q. R."}) == \
        '"Q. R." <Q.R@example.org>'


def test_missing_identity_names_the_keys(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "")
    with pytest.raises(ConfigError, match="identity.name is empty and git config user.name"):
        identity.resolve(cfg, {"user.email": "a@b.org"})
    with pytest.raises(ConfigError, match="identity.email is empty and git config user.email"):
        identity.resolve(cfg, {"user.name": "A"})
    with pytest.raises(ConfigError, match="no sender for mail"):
        identity.mail_from(cfg, {"user.name": "A"})  # never the patch's author
    with pytest.raises(ConfigError, match="sendemail.from 'nobody': not an e-mail address"):
        identity.mail_from(cfg, {"sendemail.from": "nobody"})
