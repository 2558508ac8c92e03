"""calsync -> Google: push notification channels (``events.watch``,
``calendarList.watch``, ``channels.stop``). The channel's token is redacted from errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from calsync.providers.base import Channel
from calsync.providers.google.calls import GoogleCalls

__all__ = ["ChannelCalls"]


class ChannelCalls:
    """Opens and stops one user's push channels, through `calls`."""

    def __init__(self, calls: GoogleCalls) -> None:
        self._calls = calls

    def watch_events(
        self, calendar_id: str, *, channel_id: str, token: str, address: str, ttl: timedelta
    ) -> Channel:
        """A channel that posts to `address` when the calendar's events change."""
        body = _watch_body(channel_id=channel_id, token=token, address=address, ttl=ttl)
        answer = self._calls.execute(
            lambda api: api.events.watch(calendarId=calendar_id, body=body), secrets=(token,)
        )
        return _channel(answer)

    def watch_calendar_list(
        self, *, channel_id: str, token: str, address: str, ttl: timedelta
    ) -> Channel:
        """A channel that posts to `address` when the user's calendar list changes."""
        body = _watch_body(channel_id=channel_id, token=token, address=address, ttl=ttl)
        answer = self._calls.execute(
            lambda api: api.calendar_list.watch(body=body), secrets=(token,)
        )
        return _channel(answer)

    def stop_channel(self, *, channel_id: str, resource_id: str) -> None:
        body = {"id": channel_id, "resourceId": resource_id}
        self._calls.execute(lambda api: api.channels.stop(body=body))


def _watch_body(*, channel_id: str, token: str, address: str, ttl: timedelta) -> dict[str, Any]:
    return {
        "id": channel_id,
        "type": "web_hook",
        "address": address,
        "token": token,
        "params": {"ttl": str(int(ttl.total_seconds()))},
    }


def _channel(answer: dict[str, Any]) -> Channel:
    expiration = answer.get("expiration")
    return Channel(
        channel_id=answer["id"],
        resource_id=answer["resourceId"],
        resource_uri=answer.get("resourceUri"),
        expiration=datetime.fromtimestamp(int(expiration) / 1000, UTC) if expiration else None,
    )
