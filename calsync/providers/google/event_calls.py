"""calsync <-> Google, one event at a time: ``events.get`` reads one; ``insert``,
``patch``, ``update`` and ``delete`` write one, with ``sendUpdates`` and, when given,
``If-Match``. Each answer is mapped back to an `Event` in the calendar's zone, which is
looked up before a write so that nothing can fail after one."""

from __future__ import annotations

from typing import Any, Literal

from calsync.domain.models import Event
from calsync.providers.errors import Permanent
from calsync.providers.google.calendar_calls import CalendarCalls
from calsync.providers.google.calls import GoogleCalls
from calsync.providers.google.mapping import event_from_google, event_to_google
from calsync.providers.google.props import CONFERENCE_DATA_VERSION

__all__ = ["EventCalls"]


class EventCalls:
    """One user's single-event calls, through `calls`; zones from `calendars`."""

    def __init__(self, calls: GoogleCalls, calendars: CalendarCalls, send_updates: str) -> None:
        self._calls = calls
        self._calendars = calendars
        self._send_updates = send_updates

    def get_event(self, calendar_id: str, event_id: str) -> Event:
        zone = self._calendars.zone(calendar_id)
        answer = self._calls.execute(
            lambda api: api.events.get(calendarId=calendar_id, eventId=event_id)
        )
        return _event(answer, zone)

    def insert_event(
        self, calendar_id: str, event: Event, *, event_id: str, calsync_id: str
    ) -> Event:
        body = event_to_google(event, calsync_id=calsync_id, event_id=event_id)
        zone = self._calendars.zone(calendar_id)  # before a write, so it cannot fail after one
        answer = self._calls.execute(
            lambda api: api.events.insert(
                calendarId=calendar_id,
                body=body,
                sendUpdates=self._send_updates,
                conferenceDataVersion=CONFERENCE_DATA_VERSION,
            )
        )
        return _event(answer, zone)

    def patch_event(
        self,
        calendar_id: str,
        event_id: str,
        event: Event,
        *,
        calsync_id: str,
        if_match: str | None,
        previous: Event | None = None,
    ) -> Event:
        body = event_to_google(event, calsync_id=calsync_id, previous=previous)
        return self._write("patch", calendar_id, event_id, body, if_match)

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        event: Event,
        *,
        calsync_id: str,
        if_match: str | None,
    ) -> Event:
        body = event_to_google(event, calsync_id=calsync_id)
        return self._write("update", calendar_id, event_id, body, if_match)

    def _write(
        self,
        method: Literal["patch", "update"],
        calendar_id: str,
        event_id: str,
        body: dict[str, Any],
        if_match: str | None,
    ) -> Event:
        """``events.patch`` or ``events.update`` of an existing event with ``body``."""
        zone = self._calendars.zone(calendar_id)  # before a write, so it cannot fail after one
        answer = self._calls.execute(
            lambda api: (api.events.patch if method == "patch" else api.events.update)(
                calendarId=calendar_id,
                eventId=event_id,
                body=body,
                sendUpdates=self._send_updates,
                conferenceDataVersion=CONFERENCE_DATA_VERSION,
            ),
            if_match=if_match,
        )
        return _event(answer, zone)

    def delete_event(self, calendar_id: str, event_id: str, *, if_match: str | None) -> None:
        self._calls.execute(
            lambda api: api.events.delete(
                calendarId=calendar_id, eventId=event_id, sendUpdates=self._send_updates
            ),
            if_match=if_match,
        )


def _event(answer: dict[str, Any], zone: str) -> Event:
    try:
        return event_from_google(answer, zone)
    except ValueError as err:
        raise Permanent("Google answered with an event calsync cannot read") from err
