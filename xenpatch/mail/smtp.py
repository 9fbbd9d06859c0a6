"""SMTP: the settings (config, git's ``sendemail.*``, environment) and delivering built messages.

Settings follow git send-email's names (git-send-email(1)): ``smtpServer``,
``smtpServerPort``, ``smtpEncryption`` (``tls`` = STARTTLS, ``ssl`` = SMTPS),
``smtpUser``, ``smtpPass``, ``smtpSslCertPath``.  ``[smtp]`` in the config
wins over git config; the password comes only from ``XENPATCH_SMTP_PASSWORD``
or ``sendemail.smtpPass`` and never appears in a message, repr or log.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..errors import ConfigError, EnvironmentFailure
from .compose import Outgoing

DEFAULT_PORTS = {"ssl": 465, "tls": 587, "none": 25}
TIMEOUT = 60.0


@dataclass(frozen=True)
class SmtpSettings:
    server: str
    port: int
    encryption: str  # "tls" (STARTTLS), "ssl" or "none"
    user: str
    password: str = field(repr=False)
    ssl_cert_path: str | None  # None: the system's CAs; "": no verification (git's meaning)
    batch: int = 0
    pause: int = 0

    @property
    def where(self) -> str:
        return f"SMTP {self.server}:{self.port}"


def settings_from(config: Config, git_config: Mapping[str, str],
                  env: Mapping[str, str]) -> SmtpSettings:
    """The settings in force, or ConfigError naming what is missing or wrong."""
    def pick(key: str, git_key: str) -> str:
        value = config.get("smtp", key)
        return str(value) if value else git_config.get(f"sendemail.{git_key}", "")

    server = pick("server", "smtpserver")
    if not server:
        raise ConfigError("no SMTP server: set [smtp].server, XENPATCH_SMTP_SERVER or "
                          "git config sendemail.smtpServer")
    if server.startswith("/"):
        raise ConfigError(f"sendemail.smtpServer {server}: a sendmail program is not supported; "
                          "give an SMTP server")
    encryption = (pick("encryption", "smtpencryption") or "tls").lower()
    if encryption not in DEFAULT_PORTS:
        raise ConfigError(f"smtp encryption {encryption!r}: must be tls, ssl or none")
    port_text = pick("port", "smtpserverport") or str(DEFAULT_PORTS[encryption])
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"sendemail.smtpServerPort {port_text!r}: not a port number")
    user = pick("user", "smtpuser")
    password = env.get("XENPATCH_SMTP_PASSWORD") or git_config.get("sendemail.smtppass", "")
    if user and not password:
        raise ConfigError(f"SMTP user {user} has no password: set XENPATCH_SMTP_PASSWORD "
                          "or git config sendemail.smtpPass")
    cert: str | None = config.get("smtp", "ssl_cert_path") or None
    if cert is None and "sendemail.smtpsslcertpath" in git_config:
        cert = git_config["sendemail.smtpsslcertpath"]
    if cert and not Path(cert).expanduser().exists():
        raise ConfigError(f"smtp ssl_cert_path {cert}: no such file or directory")
    return SmtpSettings(server, int(port_text), encryption, user, password, cert,
                        config.get("smtp", "batch"), config.get("smtp", "pause"))


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Verification as git send-email does it: a CA file or directory, or none if set empty."""
    if settings.ssl_cert_path == "":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if settings.ssl_cert_path is None:
        return ssl.create_default_context()
    path = Path(settings.ssl_cert_path).expanduser()
    try:
        if path.is_dir():
            return ssl.create_default_context(capath=str(path))
        return ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"smtp ssl_cert_path {path}: not usable certificates ({e})") from e


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """A logged-in session; EnvironmentFailure (exit 3) for anything the server or network does."""
    ctx = tls_context(settings) if settings.encryption != "none" else None
    session: smtplib.SMTP | None = None
    try:
        if settings.encryption == "ssl":
            session = smtplib.SMTP_SSL(settings.server, settings.port, timeout=TIMEOUT,
                                       context=ctx)
        else:
            session = smtplib.SMTP(settings.server, settings.port, timeout=TIMEOUT)
        session.ehlo()
        if settings.encryption == "tls":
            session.starttls(context=ctx)
            session.ehlo()
        if settings.user:
            session.login(settings.user, settings.password)
        return session
    except smtplib.SMTPAuthenticationError as e:
        _close(session)
        raise EnvironmentFailure(f"{settings.where}: authentication as {settings.user} "
                                 f"failed ({e.smtp_code})") from e
    except (smtplib.SMTPException, OSError) as e:
        _close(session)
        raise EnvironmentFailure(f"{settings.where}: {_describe(e)}") from e


def _describe(e: BaseException) -> str:
    # Never str(e) of an auth exchange: only codes and the kind of failure.
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({e.verify_message})"
    if isinstance(e, ssl.SSLError):
        return f"TLS failed ({e.reason})"
    if isinstance(e, smtplib.SMTPNotSupportedError):
        return "the server does not offer STARTTLS/AUTH as configured"
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    if isinstance(e, smtplib.SMTPResponseException):
        return f"the server refused ({e.smtp_code})"
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        return f"the server refused the recipients {', '.join(sorted(e.recipients))}"
    if isinstance(e, socket.timeout):
        return "timed out"
    return f"cannot connect ({getattr(e, 'strerror', None) or type(e).__name__})"


def _close(session: smtplib.SMTP | None) -> None:
    if session is None:
        return
    try:
        session.quit()
    except (smtplib.SMTPException, OSError):
        session.close()


def deliver(settings: SmtpSettings, envelope_from: str, messages: Sequence[Outgoing],
            on_sent: Callable[[Outgoing], None],
            sleep: Callable[[float], None] = time.sleep) -> None:
    """Send MESSAGES in order, calling ON_SENT as the server accepts each one.

    With ``batch`` N, the session is closed after every N messages and a new
    one opened after ``pause`` seconds (git send-email's --batch-size and
    --relogin-delay).
    """
    session = connect(settings)
    done = 0
    try:
        for out in messages:
            if settings.batch and done and done % settings.batch == 0:
                _close(session)
                sleep(settings.pause)
                session = connect(settings)
            data = out.message.as_bytes()
            options = [] if data.isascii() else ["BODY=8BITMIME"]
            try:
                session.sendmail(envelope_from, list(out.recipients), data, mail_options=options)
            except (smtplib.SMTPException, OSError) as e:
                raise EnvironmentFailure(
                    f"{settings.where}: {_describe(e)} while sending {out.name}; "
                    f"{done} of {len(messages)} sent, rerun to send the rest") from e
            done += 1
            on_sent(out)
    finally:
        _close(session)
