"""The sending port: one :class:`Sender` per channel, and the errors senders raise.

A sender turns one :class:`Notice` into one message on its channel and either returns
(sent), raises :class:`TemporaryFailure` (try again later, with backoff) or
:class:`PermanentFailure` (give up; the reason is shown to the user). It never changes the
delivery row itself: :mod:`calsync.notify.deliveries` does, in the same transaction.

:func:`build_dispatcher` wires the real senders from settings: SMTP when
``CALSYNC_SMTP_URL`` is set, Web Push when ``CALSYNC_VAPID_PRIVATE_KEY`` is, webhooks
always. A channel without its setting fails permanently with a reason that names it.
In dev mode (``Settings.notice_sink_dir``), webhooks, and email unless SMTP is set, are
kept in that folder instead of sent (:mod:`calsync.notify.sink`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from calsync.config import Settings
from calsync.notify.addresses import AddressGuard
from calsync.notify.outbound import OutboundHttp
from calsync.store.secrets import SecretBox

__all__ = [
    "DeliveryFailed",
    "Dispatcher",
    "Notice",
    "PermanentFailure",
    "Recipient",
    "Sender",
    "TemporaryFailure",
    "build_dispatcher",
]


class DeliveryFailed(Exception):
    """A notice could not be sent; ``reason`` is safe to show to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r})"


class TemporaryFailure(DeliveryFailed):
    """Worth trying again later (network trouble, 5xx, 429, a 4xx SMTP reply)."""


class PermanentFailure(DeliveryFailed):
    """Trying again would not help (refused address, 4xx answer, channel not configured)."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a notice is for."""

    user_id: uuid.UUID
    email: str
    timezone: str
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """One delivery to make: the row's identity, its recipient and what it says."""

    id: uuid.UUID
    kind: str
    channel: str
    recipient: Recipient
    payload: Mapping[str, Any]
    due_at: datetime


class Sender(Protocol):
    """Sends notices through one channel."""

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        """Send ``notice``; ``session`` is the delivery's transaction (for lookups and
        for housekeeping such as removing an expired push subscription).

        Raises:
            TemporaryFailure: try again later.
            PermanentFailure: give up.
        """
        ...


@dataclass(frozen=True)
class Unconfigured:
    """The sender of a channel whose setting is missing: fails, naming the setting."""

    reason: str

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        raise PermanentFailure(self.reason)


@dataclass(frozen=True)
class Dispatcher:
    """Routes each notice to the sender of its channel."""

    senders: Mapping[str, Sender] = field(default_factory=dict)

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        sender = self.senders.get(notice.channel)
        if sender is None:
            raise PermanentFailure(f"no sender for the {notice.channel} channel")
        sender.send(session, notice, now=now)


def build_dispatcher(
    settings: Settings, box: SecretBox, *, http: OutboundHttp | None = None
) -> Dispatcher:
    """The real senders for ``settings``. Webhooks and Web Push share ``http``, which
    defaults to the SSRF rule with the system's resolver and certificate authorities;
    tests pass one whose guard names their receivers (``AddressGuard(test_listeners=...)``)."""
    from calsync.notify.webhooks import WebhookSender

    http = http or OutboundHttp(AddressGuard())
    senders: dict[str, Sender] = {"webhook": WebhookSender(box, http), **_email(settings)}
    if settings.notice_sink_dir is not None:
        from calsync.notify.sink import NoticeSink, SinkEmail, SinkWebhooks

        sink = NoticeSink(settings.notice_sink_dir)
        senders["webhook"] = SinkWebhooks(box, sink)
        if not settings.smtp_url:
            senders["email"] = SinkEmail(sink, settings.smtp_sender)
    return Dispatcher(senders | _push(settings, http))


def _email(settings: Settings) -> dict[str, Sender]:
    from calsync.notify.smtp import SmtpSender, parse_smtp_url

    if not settings.smtp_url:
        return {"email": Unconfigured("email is not configured (CALSYNC_SMTP_URL)")}
    try:
        return {"email": SmtpSender(parse_smtp_url(settings.smtp_url), settings.smtp_sender)}
    except ValueError as err:
        return {"email": Unconfigured(f"CALSYNC_SMTP_URL is not usable: {err}")}


def _push(settings: Settings, http: OutboundHttp) -> dict[str, Sender]:
    from calsync.notify.webpush import WebPushSender, load_vapid_key

    if not settings.vapid_private_key:
        return {"push": Unconfigured("Web Push is not configured (CALSYNC_VAPID_PRIVATE_KEY)")}
    try:
        key = load_vapid_key(settings.vapid_private_key)
    except ValueError as err:
        return {"push": Unconfigured(f"CALSYNC_VAPID_PRIVATE_KEY is not usable: {err}")}
    return {"push": WebPushSender(key, settings.vapid_subject, http)}
