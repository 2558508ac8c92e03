"""Google -> calsync: the user's calendar list (``calendarList.list``) and a calendar's zone
(``calendars.get``), remembering every zone they learn in `zones.CalendarZones`."""

from __future__ import annotations

from typing import Any, Final

from calsync.providers.base import CalendarInfo
from calsync.providers.google.calls import GoogleCalls
from calsync.providers.google.mapping import storable_text
from calsync.providers.google.zones import FALLBACK_ZONE, CalendarZones

__all__ = ["CalendarCalls"]

CALENDAR_LIST_PAGE_SIZE: Final = 250  # Google's maximum for calendarList.list
CALENDAR_SUMMARY_LIMIT: Final = 1024  # calendars.summary's length


class CalendarCalls:
    """The calendar list and calendars of one user, through `calls`."""

    def __init__(self, calls: GoogleCalls, zones: CalendarZones) -> None:
        self._calls = calls
        self._zones = zones

    def list_calendars(self) -> list[CalendarInfo]:
        """Every calendar of the list, hidden and deleted ones too, all pages followed."""
        calendars: list[CalendarInfo] = []
        page_token: str | None = None
        while True:
            answer = self._calendar_list_page(page_token)
            for item in answer.get("items") or ():
                calendars.append(_calendar_info(item))
                if item.get("timeZone"):
                    self._zones.remember(item["id"], item["timeZone"])
            page_token = answer.get("nextPageToken")
            if not page_token:
                return calendars

    def _calendar_list_page(self, page_token: str | None) -> Any:
        params: dict[str, Any] = {
            "maxResults": CALENDAR_LIST_PAGE_SIZE,
            "showHidden": True,
            "showDeleted": True,
        }
        if page_token:
            params["pageToken"] = page_token
        return self._calls.execute(lambda api: api.calendar_list.list(**params), cursor=page_token)

    def zone(self, calendar_id: str) -> str:
        """The calendar's zone: known to this process or the shared source, else Google's
        (``calendars.get``, remembered), else `FALLBACK_ZONE`."""
        zone = self._zones.find(self._calls.user_id, calendar_id)
        if zone is None:
            answer = self._calls.execute(lambda api: api.calendars.get(calendarId=calendar_id))
            zone = answer.get("timeZone") or FALLBACK_ZONE
            self._zones.remember(calendar_id, zone)
        return zone


def _calendar_info(item: dict[str, Any]) -> CalendarInfo:
    # the summary is the calendar owner's text (anyone who shares a calendar): storable
    summary = item.get("summaryOverride") or item.get("summary") or ""
    return CalendarInfo(
        calendar_id=item["id"],
        summary=storable_text(str(summary), CALENDAR_SUMMARY_LIMIT),
        timezone=item.get("timeZone") or FALLBACK_ZONE,
        access_role=item.get("accessRole") or "freeBusyReader",
        primary=bool(item.get("primary", False)),
        deleted=bool(item.get("deleted", False)),
    )
