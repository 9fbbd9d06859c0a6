"""Who the user is, resolved once for every command (generate's commits, send, review and watch mail).

Precedence, for each of name and e-mail on its own:

1. ``[identity].name`` / ``[identity].email`` (config file or
   ``XENPATCH_IDENTITY_*``);
2. ``git config user.name`` / ``user.email`` as git reads it from the
   directory the command works in (system, global, repository).

The ``From:`` of mail follows git send-email (git-send-email(1), ``--from``):
``[identity].email`` when set (with the name above); else
``git config sendemail.from``; else the identity above.  There is no fallback
to a patch's author: mail goes out as the user, and a missing identity is a
configuration error naming the keys to set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import getaddresses

from .config import Config
from .errors import ConfigError


@dataclass(frozen=True)
class Identity:
    """A person: the name and address of ``Signed-off-by:`` and ``From:``."""

    name: str
    email: str

    @property
    def address(self) -> str:
        """``Name <email>``, the name quoted when RFC 5322 says it must be."""
        name = self.name
        if re.search(r'[()<>\[\]:;@\\,."]', name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.email}>" if name else self.email


def resolve(config: Config, git_config: Mapping[str, str]) -> Identity:
    """The user's name and e-mail (see the module docstring), or ConfigError naming what is unset.

    GIT_CONFIG holds ``git config --list`` (lower-cased keys), as
    ``gitrepo.config_values`` returns it."""
    name = config.get("identity", "name") or git_config.get("user.name", "")
    email = config.get("identity", "email") or git_config.get("user.email", "")
    if not name:
        raise ConfigError("identity.name is empty and git config user.name is not set")
    if not email:
        raise ConfigError("identity.email is empty and git config user.email is not set")
    return Identity(name, email)


def mail_from(config: Config, git_config: Mapping[str, str]) -> str:
    """The ``From:`` of outgoing mail (see the module docstring), checked as one address."""
    if not config.get("identity", "email") and git_config.get("sendemail.from"):
        return _one_address("sendemail.from", git_config["sendemail.from"])
    email = config.get("identity", "email") or git_config.get("user.email", "")
    if not email:
        raise ConfigError("no sender for mail: set identity.email, git config sendemail.from "
                          "or git config user.email")
    name = config.get("identity", "name") or git_config.get("user.name", "")
    where = "[identity]" if config.get("identity", "email") else "git config user.email"
    _one_address(where, email)
    return Identity(name, email).address


def _one_address(where: str, text: str) -> str:
    found = getaddresses([text])
    ok = (len(found) == 1 and "\n" not in text and "\r" not in text
          and re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+", found[0][1] or "") is not None)
    if not ok:
        raise ConfigError(f"{where} {text!r}: not an e-mail address")
    return Identity(*found[0]).address
