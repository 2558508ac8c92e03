"""Email through SMTP (smtplib): the ``email`` channel.

``CALSYNC_SMTP_URL`` names the server:

- ``smtp://[user:password@]host[:port]`` plain SMTP (port 25), or with ``?starttls=true``
  upgraded with STARTTLS before anything else is said;
- ``smtp+starttls://[user:password@]host[:port]`` STARTTLS, required (port 587);
- ``smtps://[user:password@]host[:port]`` TLS from the first byte (port 465).

User and password are percent-decoded. Authentication is only ever sent over TLS unless
the URL is plain ``smtp://`` (a local relay). SMTP replies are translated here: 4xx and
lost connections are temporary, 5xx permanent.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.orm import Session

from calsync.notify.render import email_message
from calsync.notify.senders import Notice, PermanentFailure, TemporaryFailure
from calsync.store.secrets import Secret

__all__ = ["SmtpConfig", "SmtpSender", "parse_smtp_url"]

_DEFAULT_PORTS: Final = {"plain": 25, "starttls": 587, "tls": 465}


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to reach the SMTP server."""

    host: str
    port: int
    security: str  # "plain", "starttls" or "tls"
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpConfig:
    """The :class:`SmtpConfig` of a ``CALSYNC_SMTP_URL`` (see the module docstring).

    Raises:
        ValueError: an unknown scheme, no host, or a bad port. Never echoes the password.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    starttls_flag = query.get("starttls", ["false"])[0].lower() in {"1", "true", "yes"}
    if parts.scheme == "smtp":
        security = "starttls" if starttls_flag else "plain"
    elif parts.scheme == "smtp+starttls":
        security = "starttls"
    elif parts.scheme == "smtps":
        security = "tls"
    else:
        raise ValueError("the scheme must be smtp, smtp+starttls or smtps")
    if not parts.hostname:
        raise ValueError("a host is required")
    try:
        port = parts.port or _DEFAULT_PORTS[security]
    except ValueError:
        raise ValueError("the port must be a number") from None
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=Secret(unquote(parts.password)) if parts.password else None,
    )


class SmtpSender:
    """Sends each notice as one email, on a fresh connection (sends are rare and a pooled
    connection would only time out between them)."""

    def __init__(
        self,
        config: SmtpConfig,
        sender: str,
        *,
        timeout: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.sender = sender
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        message = email_message(notice, sender=self.sender, now=now)
        try:
            with self._connect() as client:
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            reason = f"the mail server refused the recipient ({', '.join(map(str, codes))})"
            raise _by_code(min(codes, default=550), reason) from None
        except smtplib.SMTPResponseException as err:
            reason = f"the mail server answered {err.smtp_code}: {_text(err.smtp_error)}"
            raise _by_code(err.smtp_code, reason) from None
        except smtplib.SMTPNotSupportedError as err:
            raise PermanentFailure(f"the mail server does not support {err}") from None
        except (smtplib.SMTPException, OSError) as err:
            raise TemporaryFailure(f"the mail server could not be reached: {err}") from None

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        client: smtplib.SMTP
        if config.security == "tls":
            client = smtplib.SMTP_SSL(
                config.host, config.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=self.timeout)
        try:
            client.ehlo()
            if config.security == "starttls":
                client.starttls(context=self.ssl_context)
                client.ehlo()
            if config.username is not None:
                password = config.password.reveal() if config.password else ""
                client.login(config.username, password)
        except BaseException:
            client.close()
            raise
        return client


def _by_code(code: int, reason: str) -> PermanentFailure | TemporaryFailure:
    return TemporaryFailure(reason) if 400 <= code < 500 else PermanentFailure(reason)


def _text(raw: bytes | str) -> str:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return text[:200]
