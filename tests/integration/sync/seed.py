"""Event bodies (Google's JSON) to seed the emulator with: singles, all-day, series."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from calsync.domain.models import EventTime
from calsync.domain.recurrence import instance_id as google_instance_id
from calsync.providers.google.mapping import event_time_from_google


def timed(
    index: int, *, zone: str = "Europe/Berlin", start: datetime | None = None
) -> dict[str, Any]:
    begin = start or datetime(2026, 11, 2, 8, 0) + timedelta(hours=index * 5)
    return {
        "summary": f"Meeting {index}",
        "description": f"about topic {index}",
        "location": f"Room {index % 7}",
        "start": {"dateTime": begin.isoformat(), "timeZone": zone},
        "end": {"dateTime": (begin + timedelta(minutes=45)).isoformat(), "timeZone": zone},
    }


def all_day(index: int) -> dict[str, Any]:
    day = date(2026, 11, 1) + timedelta(days=index % 400)
    return {
        "summary": f"Holiday {index}",
        "start": {"date": day.isoformat()},
        "end": {"date": (day + timedelta(days=1 + index % 3)).isoformat()},
    }


def weekly(index: int) -> dict[str, Any]:
    body = timed(index, start=datetime(2026, 10, 5, 9, 0) + timedelta(days=index % 5))
    body["summary"] = f"Weekly {index}"
    body["recurrence"] = ["RRULE:FREQ=WEEKLY;COUNT=20"]
    return body


def mixed(count: int) -> list[dict[str, Any]]:
    """`count` bodies: a tenth series, a fifth all-day, the rest timed singles."""
    bodies: list[dict[str, Any]] = []
    for index in range(count):
        if index % 10 == 0:
            bodies.append(weekly(index))
        elif index % 5 == 1:
            bodies.append(all_day(index))
        else:
            bodies.append(timed(index, zone="America/New_York" if index % 3 else "Europe/Berlin"))
    return bodies


def instance_id(series: dict[str, Any], week: int) -> str:
    """Google's id of the `week`-th instance of a created `weekly` series (same wall time)."""
    start = event_time_from_google(series["start"], "UTC")
    later = EventTime.at(
        start.local().replace(tzinfo=None) + timedelta(weeks=week), series["start"]["timeZone"]
    )
    return google_instance_id(series["id"], later)
