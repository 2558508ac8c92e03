"""The sending port: one :class:`Sender` per channel, and the errors senders raise.

A sender turns one :class:`Notice` into one message on its channel and either returns
(sent), raises :class:`TemporaryFailure` (try again later, with backoff) or
:class:`PermanentFailure` (give up; the reason is shown to the user). It never changes the
delivery row itself: :mod:`calsync.notify.deliveries` does, in the same transaction.

:func:`calsync.notify.wiring.build_dispatcher` wires the real senders from settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

__all__ = [
    "DeliveryFailed",
    "Dispatcher",
    "Notice",
    "PermanentFailure",
    "Recipient",
    "Sender",
    "TemporaryFailure",
    "Unconfigured",
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
