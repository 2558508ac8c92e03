"""Signed outgoing webhooks: the ``webhook`` channel.

Each notice is POSTed as JSON to the user's ``webhook_url`` with three headers:

- ``Calsync-Timestamp``: Unix seconds when it was signed;
- ``Calsync-Signature``: ``v1=`` + hex HMAC-SHA256, keyed with the user's webhook secret,
  over ``<timestamp>.<raw body>``;
- ``Calsync-Delivery``: the delivery id, the same on every retry of the same notice, so a
  receiver can drop repeats.

Receivers verify with :func:`verify_signature` (or its few lines in docs/notices.md) and
should refuse timestamps more than five minutes away from their clock.

Every send goes through :class:`calsync.notify.outbound.OutboundHttp`, under the SSRF rule
(:mod:`calsync.notify.addresses`): the host is resolved once, every address must be
public, and the connection goes to a checked address (the URL's host kept for ``Host``
and TLS SNI/verification), never to a fresh DNS answer. Redirects are not followed. 2xx
is success; 408, 425, 429 and 5xx and network errors are retried later with backoff; any
other answer, a 3xx included, gives up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session

from calsync.notify.addresses import UnsafeAddress
from calsync.notify.outbound import Poster, Unreachable
from calsync.notify.preferences import load_preferences, load_webhook_secret
from calsync.notify.render import json_message
from calsync.notify.senders import Notice, PermanentFailure, TemporaryFailure
from calsync.store.secrets import SecretBox

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookSender",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "Calsync-Signature"
TIMESTAMP_HEADER: Final = "Calsync-Timestamp"
DELIVERY_HEADER: Final = "Calsync-Delivery"
TOLERANCE_SECONDS: Final = 300
_RETRYABLE: Final = frozenset({408, 425, 429})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Calsync-Signature`` value for ``body`` signed at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    *,
    timestamp: str,
    signature: str,
    body: bytes,
    now: datetime,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> bool:
    """Whether a received webhook is authentic and fresh (what a receiver does)."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - signed_at) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, signed_at, body), signature)


class WebhookSender:
    """POSTs signed notices to the user's webhook URL through ``http``."""

    def __init__(self, box: SecretBox, http: Poster) -> None:
        self.box = box
        self.http = http

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        prefs = load_preferences(session, notice.recipient.user_id)
        secret = load_webhook_secret(session, notice.recipient.user_id, self.box)
        if prefs.webhook_url is None or secret is None:
            raise PermanentFailure("no webhook URL is set")
        body = json.dumps(
            json_message(notice, now=now), separators=(",", ":"), sort_keys=True
        ).encode()
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "calsync-webhooks/1",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret.reveal(), timestamp, body),
            DELIVERY_HEADER: str(notice.id),
        }
        try:
            status = self.http.post(prefs.webhook_url, body=body, headers=headers)
        except UnsafeAddress as err:
            raise PermanentFailure(f"webhook URL refused: {err}") from None
        except Unreachable as err:
            raise TemporaryFailure(f"the webhook could not be reached: {err}") from None
        _check(status)


def _check(status: int) -> None:
    if 200 <= status < 300:
        return
    reason = f"the webhook answered {status}"
    if status in _RETRYABLE or status >= 500:
        raise TemporaryFailure(reason)
    if 300 <= status < 400:
        raise PermanentFailure(reason + " (redirects are not followed)")
    raise PermanentFailure(reason)
