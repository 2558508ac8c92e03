"""Web Push subscriptions: validation of what a browser's ``PushSubscription.toJSON()``
gives, and the repository (``POST``/``DELETE /me/push-subscriptions``).

The endpoint must be an https URL that passes the SSRF syntax rule; ``keys.p256dh`` must be
an uncompressed P-256 point (65 bytes, base64url) and ``keys.auth`` a 16-byte secret, as the
Push API produces, so that a bad subscription is refused now rather than failing later.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from calsync.domain.errors import FieldErrors, ValidationError
from calsync.notify.addresses import UnsafeAddress, check_url_syntax
from calsync.store import web_push_subscriptions

__all__ = ["FIELDS", "SubscriptionInput", "delete_subscription", "parse", "save_subscription"]

FIELDS = ("endpoint", "keys", "expirationTime")


@dataclass(frozen=True, slots=True)
class SubscriptionInput:
    endpoint: str
    p256dh: str
    auth: str


def parse(body: dict[str, Any]) -> SubscriptionInput:
    """Check a subscription body. Raises `FieldErrors` naming every bad field."""
    problems: list[ValidationError] = []
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str):
        problems.append(ValidationError("endpoint", "must be the push service's https URL"))
    else:
        try:
            check_url_syntax(endpoint)
        except UnsafeAddress as err:
            problems.append(ValidationError("endpoint", str(err)))
    keys = body.get("keys")
    if not isinstance(keys, dict) or set(keys) - {"p256dh", "auth"}:
        problems.append(ValidationError("keys", 'must be {"p256dh": ..., "auth": ...}'))
    else:
        for name, check in (("p256dh", _p256dh), ("auth", _auth)):
            try:
                check(_b64(keys.get(name), f"keys.{name}"))
            except ValidationError as err:
                problems.append(err)
    expiration = body.get("expirationTime")
    if expiration is not None and (
        isinstance(expiration, bool) or not isinstance(expiration, int | float)
    ):
        problems.append(
            ValidationError("expirationTime", "must be a number of milliseconds or null")
        )
    if problems:
        raise FieldErrors(problems)
    assert isinstance(endpoint, str)
    assert isinstance(keys, dict)
    return SubscriptionInput(endpoint, keys["p256dh"].rstrip("="), keys["auth"].rstrip("="))


def _p256dh(raw: bytes) -> None:
    if len(raw) != 65 or raw[0] != 4:
        raise ValidationError("keys.p256dh", "must be an uncompressed P-256 public key")


def _auth(raw: bytes) -> None:
    if len(raw) != 16:
        raise ValidationError("keys.auth", "must be a 16-byte secret")


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise ValidationError(field, "must be a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValidationError(field, "must be a base64url string") from None


def save_subscription(
    session: Session, user_id: uuid.UUID, subscription: SubscriptionInput, *, now: datetime
) -> tuple[uuid.UUID, bool]:
    """Store (or refresh the keys of) the user's subscription for that endpoint.
    Returns its id and whether it is new. Does not commit."""
    return web_push_subscriptions.save(
        session,
        user_id,
        endpoint=subscription.endpoint,
        p256dh=subscription.p256dh,
        auth=subscription.auth,
        now=now,
    )


def delete_subscription(session: Session, user_id: uuid.UUID, subscription_id: uuid.UUID) -> bool:
    """Remove one of the user's subscriptions; False when they have none with that id."""
    return web_push_subscriptions.delete_owned(session, user_id, subscription_id)
