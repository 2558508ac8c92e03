"""Web Push with VAPID (pywebpush): the ``push`` channel.

Each notice goes to every push subscription of the user, encrypted for that subscription
(RFC 8291, ``aes128gcm``) and signed with calsync's VAPID key (RFC 8292,
``CALSYNC_VAPID_PRIVATE_KEY``: the raw 32-byte key base64url-encoded, DER base64url, or
PEM; ``CALSYNC_VAPID_SUBJECT`` is the contact ``mailto:`` or ``https:`` URL).

A push service answering 404 or 410 says the subscription is gone: it is deleted. The
notice counts as sent when at least one subscription took it; otherwise 429, 5xx and
network errors are temporary and anything else permanent. Push endpoints come from
browsers but are stored by users, so the SSRF rule applies to them as to webhooks.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Final

import requests
import sqlalchemy as sa
from py_vapid import Vapid  # type: ignore[import-untyped]
from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from calsync.notify.addresses import AddressGuard, UnsafeAddress
from calsync.notify.render import push_message
from calsync.notify.senders import Notice, PermanentFailure, TemporaryFailure
from calsync.store.tables import PushSubscription

__all__ = ["WebPushSender", "load_vapid_key"]

log = logging.getLogger(__name__)

MAX_TTL: Final = timedelta(days=1)
_GONE: Final = frozenset({404, 410})


def load_vapid_key(value: str) -> Vapid:
    """The VAPID signing key from its setting's value.

    Raises:
        ValueError: the value is not a P-256 private key in a known form.
    """
    try:
        if "-----BEGIN" in value:
            return Vapid.from_pem(value.strip().encode())
        return Vapid.from_string(value.strip())
    except Exception as err:  # py_vapid raises whatever its decoders raise
        raise ValueError(f"not a P-256 private key ({type(err).__name__})") from None


class WebPushSender:
    """Encrypts and sends notices to the user's push subscriptions."""

    def __init__(
        self, key: Vapid, subject: str, guard: AddressGuard, *, timeout: float = 10.0
    ) -> None:
        self.key = key
        self.subject = subject
        self.guard = guard
        self.timeout = timeout

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        subscriptions = session.scalars(
            sa.select(PushSubscription)
            .where(PushSubscription.user_id == notice.recipient.user_id)
            .order_by(PushSubscription.created_at)
        ).all()
        if not subscriptions:
            raise PermanentFailure("no push subscription is registered")
        data = json.dumps(push_message(notice, now=now), separators=(",", ":"))
        ttl = _ttl(notice, now)
        delivered = 0
        temporary: list[str] = []
        permanent: list[str] = []
        for subscription in subscriptions:
            try:
                self._push(subscription, data, ttl)
            except _Gone:
                session.delete(subscription)
                permanent.append("a subscription has expired and was removed")
            except TemporaryFailure as err:
                temporary.append(err.reason)
            except PermanentFailure as err:
                permanent.append(err.reason)
            else:
                delivered += 1
        if delivered:
            return
        if temporary:
            raise TemporaryFailure("; ".join(temporary))
        raise PermanentFailure("; ".join(permanent))

    def _push(self, subscription: PushSubscription, data: str, ttl: int) -> None:
        try:
            self.guard.resolve(subscription.endpoint)
        except UnsafeAddress as err:
            raise PermanentFailure(f"push endpoint refused: {err}") from None
        info = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        try:
            webpush(
                info,
                data=data,
                vapid_private_key=self.key,
                vapid_claims={"sub": self.subject},
                ttl=ttl,
                timeout=self.timeout,
            )
        except WebPushException as err:
            status = err.status_code
            if status in _GONE:
                raise _Gone from None
            reason = f"the push service answered {status}"
            if status is None or status == 429 or status >= 500:
                raise TemporaryFailure(reason) from None
            raise PermanentFailure(reason) from None
        except requests.RequestException as err:
            raise TemporaryFailure(f"the push service could not be reached: {err}") from None


class _Gone(Exception):
    """The push service no longer knows the subscription."""


def _ttl(notice: Notice, now: datetime) -> int:
    """How long the push service should keep the message for an offline device: a reminder
    is useless once its occurrence is over."""
    limit = now + MAX_TTL
    end = notice.payload.get("occurrence_end")
    if end is not None:
        limit = min(limit, datetime.fromisoformat(end))
    return max(60, int((limit - now).total_seconds()))
