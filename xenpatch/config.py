"""Configuration: one written precedence, validated once into a frozen object.

Precedence, lowest first:

1. built-in defaults (``SCHEMA`` below);
2. the config file: ``--config FILE``, else ``$XENPATCH_CONFIG``, else
   ``./config.toml`` when present; the change descriptions and abi-check
   suppressions shipped in ``xenpatch/defaults/`` come first (a change of the
   same name in the file replaces the shipped one, suppressions add up);
3. the environment: ``XENPATCH_<SECTION>_<KEY>`` (``XENPATCH_TREE_PATH``,
   ``XENPATCH_SMTP_SERVER``; lists comma-separated);
4. command-line flags (applied by ``cli.py`` through ``Config.with_overrides``).

For identity and SMTP, unset values fall back to ``git config``
(``user.name``/``user.email``, ``sendemail.*``) as git send-email and b4
do; that lookup is done by the code that needs it, not here.  The SMTP
password is never read from a file given on the command line: it comes from
``XENPATCH_SMTP_PASSWORD`` or ``sendemail.smtpPass``.

Nothing is read at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .abi.arch import NAMES as ARCH_NAMES
from .errors import ConfigError

PROFILE_NAMES = ("tools", "guest", "guest-latest")


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"
    return check


def _arches(value: Any) -> str | None:
    bad = [a for a in value if a not in ARCH_NAMES]
    return f"unknown arch {bad[0]!r} (known: {', '.join(ARCH_NAMES)})" if bad else None


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _positive(value: Any) -> str | None:
    return None if value >= 1 else "must be 1 or more"


def _port(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number (0-65535, 0 = default)"


# section -> key -> (type, default, validator or None).  Types: str, int, bool, list (of str).
SCHEMA: dict[str, dict[str, tuple[type, Any, Callable[[Any], str | None] | None]]] = {
    "identity": {
        "name": (str, "", None),  # empty: git config user.name
        "email": (str, "", None),  # empty: git config user.email
    },
    "tree": {
        "path": (str, "", None),  # empty: the Xen tree fetched by scripts/fetch_xen.py
        "base": (str, "HEAD", None),
    },
    "abi": {
        "arches": (list, list(ARCH_NAMES), _arches),
        "profile": (str, "tools", _one_of(*PROFILE_NAMES)),
        "cpp": (str, "cpp", None),
        "cache": (str, "", None),  # empty: $XDG_CACHE_HOME/xenpatch/abi
        "jobs": (int, 0, _non_negative),  # 0: one per core
    },
    "list": {
        "address": (str, "xen-devel@lists.xenproject.org", None),
        "archive": (str, "https://lore.kernel.org/xen-devel/", None),
    },
    "smtp": {
        "server": (str, "", None),  # empty: git config sendemail.smtpServer
        "port": (int, 0, _port),
        "encryption": (str, "", _one_of("", "tls", "ssl", "none")),
        "user": (str, "", None),
        "ssl_cert_path": (str, "", None),
        "batch": (int, 0, _non_negative),
        "pause": (int, 0, _non_negative),
    },
    "series": {
        "rfc": (bool, True, None),
        "version": (int, 1, lambda v: None if v >= 1 else "must be 1 or more"),
        "signoff": (bool, True, None),
        "date": (str, "", None),  # RFC 2822 or ISO 8601; empty: $SOURCE_DATE_EPOCH, else now
        "out": (str, "series", None),
        "templates": (str, "", None),  # a directory whose templates override the shipped ones
        "changelog": (str, "", None),
        "default_change": (str, "sif-hvm-ghcb", None),
    },
    "review": {  # bounds on what a reviewed thread may hand us (xenpatch.review.sources.Limits)
        "max_message_bytes": (int, 4 * 1024 * 1024, _positive),
        "max_messages": (int, 2000, _positive),
        "max_patches": (int, 200, _positive),
        "max_decompressed_bytes": (int, 64 * 1024 * 1024, _positive),
        "http_timeout": (int, 30, _positive),  # seconds
        "http_retries": (int, 3, _non_negative),
    },
}
# Sections whose content is validated by the code that owns it.
FREE_SECTIONS = {
    "changes": "tables of change descriptions (xenpatch.generate.spec)",
    "suppress": "a list of [[suppress]] tables: rule, name, reason (xenpatch.abi.check)",
}


@dataclass(frozen=True)
class Config:
    """The configuration in force: ``values[section][key]``, plus the free sections."""

    path: Path | None
    values: Mapping[str, Mapping[str, Any]]
    changes: Mapping[str, Mapping[str, Any]]
    suppress: tuple[Mapping[str, Any], ...]

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
        """A copy with ``{"section.key": value}`` applied (command-line flags); None means unset."""
        values = {s: dict(v) for s, v in self.values.items()}
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, key = dotted.split(".", 1)
            values[section][key] = _validate(section, key, value, "command line")
        return Config(self.path, _freeze(values), self.changes, self.suppress)

    @property
    def relative_to(self) -> Path:
        """Relative paths in the config file are taken from its directory."""
        return self.path.parent if self.path else Path.cwd()

    def resolve_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.relative_to / p


def shipped_defaults() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The change descriptions and abi-check suppressions shipped as package data
    (``xenpatch/defaults/``): the directory next to this module, which a wheel, a
    site-packages install and an editable install all have; importlib.resources only
    where the package is not a directory (a zip), as every command reads them and that
    import is 12 ms of a command's start."""
    here = Path(__file__).with_name("defaults")
    root: Any = here
    if not here.is_dir():
        from importlib import resources

        root = resources.files("xenpatch.defaults")
    changes: dict[str, Any] = {}
    for entry in sorted(root.joinpath("changes").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            changes.update(tomllib.loads(entry.read_text(encoding="utf-8")).get("changes", {}))
    suppress = tomllib.loads(root.joinpath("suppress.toml").read_text(encoding="utf-8"))
    return changes, list(suppress.get("suppress", []))


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return p
    if env.get("XENPATCH_CONFIG"):
        p = Path(env["XENPATCH_CONFIG"])
        if not p.is_file():
            raise ConfigError(f"XENPATCH_CONFIG={p}: no such file")
        return p
    local = Path("config.toml")
    if local.is_file():
        return local
    return None


def load_config(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the configuration (defaults, file, environment)."""
    env = os.environ if env is None else env
    path = find_config_file(explicit, env)
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
        except UnicodeDecodeError as e:  # TOML is UTF-8 (toml.io, "Spec")
            raise ConfigError(f"{path}: not UTF-8 (byte {e.start})") from e
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    where = str(path) if path else "defaults"
    values: dict[str, dict[str, Any]] = {
        s: {k: (list(d) if isinstance(d, list) else d) for k, (_, d, _) in keys.items()}
        for s, keys in SCHEMA.items()
    }
    for section, content in raw.items():
        if section in FREE_SECTIONS:
            continue
        if section not in SCHEMA:
            raise ConfigError(f"{where}: unknown section [{section}]")
        if not isinstance(content, dict):
            raise ConfigError(f"{where}: {section} must be a table")
        for key, value in content.items():
            if key not in SCHEMA[section]:
                raise ConfigError(f"{where}: unknown key {section}.{key}")
            values[section][key] = _validate(section, key, value, where)
    for section, keys in SCHEMA.items():
        for key, (typ, _, _) in keys.items():
            name = f"XENPATCH_{section.upper()}_{key.upper()}"
            if name in env:
                values[section][key] = _validate(section, key, _from_env(typ, env[name], name),
                                                 f"environment {name}")
    user_changes = raw.get("changes", {})
    if not isinstance(user_changes, dict) or not all(isinstance(v, dict)
                                                     for v in user_changes.values()):
        raise ConfigError(f"{where}: changes must be tables [changes.NAME]")
    user_suppress = raw.get("suppress", [])
    if not isinstance(user_suppress, list) or not all(isinstance(v, dict) for v in user_suppress):
        raise ConfigError(f"{where}: suppress must be a list of [[suppress]] tables")
    shipped_changes, shipped_suppress = shipped_defaults()
    changes = {**shipped_changes, **user_changes}
    suppress = shipped_suppress + user_suppress
    for i, entry in enumerate(user_suppress):
        for key in ("rule", "name", "reason"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ConfigError(f"{where}: suppress[{i}].{key} must be a non-empty string")
        extra = set(entry) - {"rule", "name", "reason", "arch"}
        if extra:
            raise ConfigError(f"{where}: unknown key suppress[{i}].{sorted(extra)[0]}")
    return Config(path, _freeze(values), MappingProxyType(dict(changes)),
                  tuple(MappingProxyType(dict(e)) for e in suppress))


def _from_env(typ: type, text: str, name: str) -> Any:
    if typ is list:
        return [t.strip() for t in text.split(",") if t.strip()]
    if typ is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment {name}={text!r}: must be true or false")
    if typ is int:
        try:
            return int(text, 0)
        except ValueError as e:
            raise ConfigError(f"environment {name}={text!r}: must be a whole number") from e
    return text


def _validate(section: str, key: str, value: Any, where: str) -> Any:
    typ, _, check = SCHEMA[section][key]
    ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
    if typ is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        want = {str: "a string", int: "a whole number", bool: "true or false",
                list: "a list of strings"}[typ]
        raise ConfigError(f"{where}: {section}.{key} must be {want}, not {value!r}")
    if check is not None:
        problem = check(value)
        if problem:
            raise ConfigError(f"{where}: {section}.{key} = {value!r}: {problem}")
    return list(value) if typ is list else value


def _freeze(values: dict[str, dict[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({s: MappingProxyType({k: (tuple(v) if isinstance(v, list) else v)
                                                  for k, v in keys.items()})
                             for s, keys in values.items()})


def series_date(value: str, env: Mapping[str, str]) -> datetime:
    """The date of a series' commits and mails: ``[series].date`` (RFC 2822 or ISO 8601),
    else ``$SOURCE_DATE_EPOCH`` (reproducible builds), else now; never naive."""
    if value:
        import email.utils  # 14 ms, for the few commands that date a series

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            try:
                when = datetime.fromisoformat(value)
            except ValueError as e:
                raise ConfigError(f"series.date = {value!r}: not an RFC 2822 or ISO 8601 "
                                  "date") from e
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    epoch = env.get("SOURCE_DATE_EPOCH", "")
    if epoch:
        if not epoch.isdigit():
            raise ConfigError(f"SOURCE_DATE_EPOCH={epoch!r}: must be whole seconds")
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC).replace(microsecond=0)
