"""Watch channels (events.watch, calendarList.watch) and the messages they send.

A channel watches one resource: the events of one calendar, or one user's calendar
list. ``resourceId`` is stable per watched resource (two channels on the same calendar
share it), as Google's is. Message numbers grow with every message but skip values,
so a receiver must not assume they are consecutive.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from calsync.emulator import timefmt

ResourceKind = Literal["events", "calendarList"]


def resource_id_for(kind: ResourceKind, target: str) -> str:
    digest = hashlib.sha1(f"{kind}:{target}".encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii").rstrip("=")


@dataclass
class Channel:
    id: str
    kind: ResourceKind
    target: str  # calendar id (events) or user email (calendarList)
    owner: str  # the user who created it
    address: str
    token: str | None
    resource_id: str
    resource_uri: str
    expiration: datetime
    created: datetime
    stopped: bool = False
    last_number: int = 0
    #: events.watch ``eventTypes``: the types whose changes it reports (`None`: all).
    event_types: frozenset[str] | None = None

    def reports(self, event_type: str | None) -> bool:
        """Whether a change of an event of `event_type` (`None`: unknown) is reported."""
        return self.event_types is None or event_type is None or event_type in self.event_types

    def active_at(self, now: datetime) -> bool:
        return not self.stopped and now < self.expiration

    def resource(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "api#channel",
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
            "expiration": str(timefmt.unix_millis(self.expiration)),
        }
        if self.token is not None:
            body["token"] = self.token
        return body

    def to_json(self, now: datetime) -> dict[str, Any]:
        return self.resource() | {
            "address": self.address,
            "owner": self.owner,
            "watching": self.kind,
            "target": self.target,
            "stopped": self.stopped,
            "expired": now >= self.expiration,
            "lastMessageNumber": self.last_number,
        }


@dataclass(frozen=True)
class PushMessage:
    """One notification POST to make; built under the state lock, sent off it."""

    channel_id: str
    address: str
    headers: dict[str, str]
    state: str
    number: int
    expiration: datetime
    generation: int = 0  # EmulatorState.generation when queued; older ones are void


@dataclass
class ChannelRegistry:
    channels: dict[str, Channel] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random)

    def add(self, channel: Channel) -> None:
        self.channels[channel.id] = channel

    def get(self, channel_id: str) -> Channel | None:
        return self.channels.get(channel_id)

    def watching(self, kind: ResourceKind, target: str, now: datetime) -> list[Channel]:
        return [
            c
            for c in self.channels.values()
            if c.kind == kind and c.target == target and c.active_at(now)
        ]

    def message(self, channel: Channel, state: str) -> PushMessage:
        """The next message on ``channel``: ``sync`` is number 1, later ones skip ahead."""
        if state == "sync":
            channel.last_number = 1
        else:
            channel.last_number += self._rng.randint(1, 4)
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": timefmt.http_date(channel.expiration),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(channel.last_number),
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        return PushMessage(
            channel.id, channel.address, headers, state, channel.last_number, channel.expiration
        )
