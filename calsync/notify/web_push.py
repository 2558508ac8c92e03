"""Web Push with VAPID (pywebpush): the ``push`` channel.

Each notice goes to every push subscription of the user, encrypted for that subscription
(RFC 8291, ``aes128gcm``) and signed with calsync's VAPID key (RFC 8292,
``CALSYNC_VAPID_PRIVATE_KEY``: the raw 32-byte key base64url-encoded, DER base64url, or
PEM; ``CALSYNC_VAPID_SUBJECT`` is the contact ``mailto:`` or ``https:`` URL).

pywebpush only encrypts (``WebPusher.encode``) and py_vapid signs; the request itself goes
through :class:`calsync.notify.outbound.OutboundHttp`, like webhooks. Push endpoints come
from browsers but are stored by users, so the SSRF rule applies to them as to webhooks:
one resolution, every address public, the connection pinned to a checked address, and
no redirect followed (pywebpush's own sender, over requests, followed a 307 anywhere).

A push service answering 404 or 410 says the subscription is gone: it is deleted. The
notice counts as sent when at least one subscription took it (2xx); otherwise 429, 5xx and
network errors are temporary and anything else (a 3xx included) permanent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from py_vapid import Vapid, VapidException  # type: ignore[import-untyped]
from pywebpush import WebPusher, WebPushException  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from calsync.notify.addresses import UnsafeAddress
from calsync.notify.outbound import OutboundHttp, Unreachable
from calsync.notify.render import push_payload
from calsync.notify.senders import Notice, PermanentFailure, TemporaryFailure
from calsync.store import web_push_subscriptions
from calsync.store.tables import PushSubscription

__all__ = ["WebPushSender", "load_vapid_key"]

MAX_TTL: Final = timedelta(days=1)
# How long a VAPID signature is valid (RFC 8292 allows at most 24 hours).
VAPID_VALIDITY: Final = timedelta(hours=12)
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

    def __init__(self, key: Vapid, subject: str, http: OutboundHttp) -> None:
        self.key = key
        self.subject = subject
        self.http = http

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        subscriptions = web_push_subscriptions.of_user(session, notice.recipient.user_id)
        if not subscriptions:
            raise PermanentFailure("no push subscription is registered")
        data = push_payload(notice, now=now)
        ttl = _ttl(notice, now)
        delivered = 0
        temporary: list[str] = []
        permanent: list[str] = []
        for subscription in subscriptions:
            try:
                self._push(subscription, data, ttl=ttl, now=now)
            except _Gone:
                web_push_subscriptions.remove(session, subscription)
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

    def _push(
        self, subscription: PushSubscription, data: bytes, *, ttl: int, now: datetime
    ) -> None:
        endpoint = subscription.endpoint
        try:
            # First, so that a refused endpoint is reported as refused, not as unsignable
            target = self.http.guard.check_url(endpoint)
            headers = self._headers(f"{target.scheme}://{target.authority}", ttl=ttl, now=now)
            status = self.http.post(endpoint, body=_encrypted(subscription, data), headers=headers)
        except UnsafeAddress as err:
            raise PermanentFailure(f"push endpoint refused: {err}") from None
        except Unreachable as err:
            raise TemporaryFailure(f"the push service could not be reached: {err}") from None
        _check(status)

    def _headers(self, audience: str, *, ttl: int, now: datetime) -> dict[str, str]:
        """The VAPID signature for the push service at ``audience`` and the RFC 8030
        headers."""
        claims = {
            "sub": self.subject,
            "aud": audience,
            "exp": int((now + VAPID_VALIDITY).timestamp()),
        }
        try:
            authorization: dict[str, str] = self.key.sign(claims)
        except VapidException as err:
            raise PermanentFailure(f"the push could not be signed: {err}") from None
        return {
            **authorization,
            "TTL": str(ttl),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }


def _encrypted(subscription: PushSubscription, data: bytes) -> bytes:
    """``data`` encrypted for the subscription (RFC 8291, aes128gcm)."""
    keys = {"p256dh": subscription.p256dh, "auth": subscription.auth}
    try:
        pusher = WebPusher({"endpoint": subscription.endpoint, "keys": keys})
        return bytes(pusher.encode(data, "aes128gcm")["body"])
    except (WebPushException, ValueError):
        raise PermanentFailure("the subscription's keys are not usable") from None


def _check(status: int) -> None:
    if 200 <= status < 300:
        return
    if status in _GONE:
        raise _Gone
    reason = f"the push service answered {status}"
    if status == 429 or status >= 500:
        raise TemporaryFailure(reason)
    if 300 <= status < 400:
        raise PermanentFailure(reason + " (redirects are not followed)")
    raise PermanentFailure(reason)


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
