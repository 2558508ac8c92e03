"""Random event contents, for calsync's API and for Google, from a `random.Random`.

Everything falls in March-May 2031 (`WINDOW` covers it with room to spare), far from
the window's edges. Kinds: timed with an offset, timed in a zone (Europe/Berlin, whose
DST starts on 2031-03-30, inside the data), all-day, and weekly or daily series with a
COUNT or an UNTIL, timed (in a zone, as Google requires) or all-day; some with
attendees, descriptions and locations.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

#: The expanded comparison's range: every simulated event and instance lies inside.
WINDOW = (date(2031, 2, 1), date(2031, 7, 31))
FIRST_DAY = date(2031, 3, 2)
DAYS = 56  # events start within 8 weeks of FIRST_DAY; series end by mid-May
ZONES = ("Europe/Berlin", "America/New_York", "UTC")
WORDS = ("standup", "review", "lunch", "1:1", "retro", "planning", "demo", "sync", "offsite")
PLACES = ("", "", "Room 1", "Café Müller", "https://meet.example/abc")
PEOPLE = ("ana@example.org", "bo@example.org", "cy@example.org")


def title(rng: random.Random, side: str) -> str:
    return f"{rng.choice(WORDS)} {rng.randrange(1000)} ({side})"


def _when(rng: random.Random) -> tuple[date, int, int]:
    day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
    return day, rng.randrange(7, 19), rng.choice((30, 45, 60, 90))


def _rule(rng: random.Random, all_day: bool, start: datetime | date) -> list[str]:
    frequency = rng.choice(("WEEKLY", "WEEKLY", "DAILY"))
    if rng.random() < 0.7:
        return [f"RRULE:FREQ={frequency};COUNT={rng.randrange(2, 7)}"]
    days = 7 * rng.randrange(1, 5) if frequency == "WEEKLY" else rng.randrange(1, 6)
    end = start + timedelta(days=days)
    until = end.strftime("%Y%m%d") if all_day else end.strftime("%Y%m%dT235959Z")
    return [f"RRULE:FREQ={frequency};UNTIL={until}"]


def api_event(rng: random.Random, *, calendar_id: str | None = None) -> dict[str, Any]:
    """A body for ``POST /events``."""
    kind = rng.choice(("offset", "zoned", "zoned", "all_day", "series", "series", "series_day"))
    day, hour, minutes = _when(rng)
    body: dict[str, Any] = {"title": title(rng, "api")}
    if calendar_id is not None:
        body["calendar_id"] = calendar_id
    if kind in ("all_day", "series_day"):
        body["start_time"] = day.isoformat()
        body["end_time"] = (day + timedelta(days=rng.choice((1, 1, 2)))).isoformat()
    else:
        zone = rng.choice(ZONES)
        start = datetime.combine(day, time(hour), ZoneInfo(zone))
        end = start + timedelta(minutes=minutes)
        if kind == "offset":
            body["start_time"], body["end_time"] = start.isoformat(), end.isoformat()
        else:
            body["start_time"] = start.replace(tzinfo=None).isoformat()
            body["end_time"] = end.replace(tzinfo=None).isoformat()
            body["timezone"] = zone
    if kind.startswith("series"):
        body["recurrence"] = _rule(rng, kind == "series_day", day)
        if "timezone" not in body and kind == "series":
            body["timezone"] = "Europe/Berlin"
    if rng.random() < 0.4:
        body["description"] = f"notes {rng.randrange(10_000)}"
    if place := rng.choice(PLACES):
        body["location"] = place
    if rng.random() < 0.3:
        body["attendees"] = rng.sample(PEOPLE, rng.randrange(1, 3))
    return body


def api_change(rng: random.Random, event: dict[str, Any]) -> dict[str, Any]:
    """A ``PUT`` body changing one or two fields of `event` (an item of ``GET /events``)."""
    changes: dict[str, Any] = {}
    for field in rng.sample(("title", "description", "location", "times"), rng.choice((1, 1, 2))):
        if field == "title":
            changes["title"] = title(rng, "api edit")
        elif field == "description":
            changes["description"] = f"edited {rng.randrange(10_000)}"
        elif field == "location":
            changes["location"] = rng.choice(PLACES[2:])
        else:
            changes |= shifted(rng, event)
    return changes


def shifted(rng: random.Random, event: dict[str, Any]) -> dict[str, Any]:
    """`event`'s start and end moved by a few hours (timed) or a day (all-day)."""
    if event["all_day"]:
        delta = timedelta(days=rng.choice((-1, 1)))
        start = date.fromisoformat(event["start_time"]) + delta
        end = date.fromisoformat(event["end_time"]) + delta
        return {"start_time": start.isoformat(), "end_time": end.isoformat()}
    delta = timedelta(hours=rng.choice((-2, -1, 1, 3)))
    start = datetime.fromisoformat(event["start_time"]) + delta
    end = datetime.fromisoformat(event["end_time"]) + delta
    return {"start_time": start.isoformat(), "end_time": end.isoformat()}


def google_event(rng: random.Random) -> dict[str, Any]:
    """An ``events.insert`` body, as another Google client writes it."""
    kind = rng.choice(("timed", "timed", "all_day", "series", "series_day"))
    day, hour, minutes = _when(rng)
    body: dict[str, Any] = {"summary": title(rng, "google")}
    if kind in ("all_day", "series_day"):
        body["start"] = {"date": day.isoformat()}
        body["end"] = {"date": (day + timedelta(days=1)).isoformat()}
    else:
        zone = rng.choice(ZONES)
        start = datetime.combine(day, time(hour))
        end = start + timedelta(minutes=minutes)
        body["start"] = {"dateTime": start.isoformat(), "timeZone": zone}
        body["end"] = {"dateTime": end.isoformat(), "timeZone": zone}
    if kind.startswith("series"):
        body["recurrence"] = _rule(rng, kind == "series_day", day)
    if rng.random() < 0.4:
        body["description"] = f"google notes {rng.randrange(10_000)}"
    if place := rng.choice(PLACES):
        body["location"] = place
    if rng.random() < 0.3:
        body["attendees"] = [{"email": e} for e in rng.sample(PEOPLE, rng.randrange(1, 3))]
    return body


def google_change(rng: random.Random, event: dict[str, Any]) -> dict[str, Any]:
    """An ``events.patch`` body changing one or two fields of a Google event resource."""
    patch: dict[str, Any] = {}
    for field in rng.sample(("summary", "description", "location", "times"), rng.choice((1, 2))):
        if field == "summary":
            patch["summary"] = title(rng, "google edit")
        elif field == "description":
            patch["description"] = f"google edited {rng.randrange(10_000)}"
        elif field == "location":
            patch["location"] = rng.choice(PLACES[2:])
        else:
            patch |= google_shifted(rng, event)
    return patch


def google_shifted(rng: random.Random, event: dict[str, Any]) -> dict[str, Any]:
    """`event`'s start and end moved, in Google's shape (keeping its zone)."""
    start, end = event["start"], event["end"]
    if "date" in start:
        delta = timedelta(days=rng.choice((-1, 1)))
        return {
            "start": {"date": (date.fromisoformat(start["date"]) + delta).isoformat()},
            "end": {"date": (date.fromisoformat(end["date"]) + delta).isoformat()},
        }
    delta = timedelta(hours=rng.choice((-2, -1, 1, 3)))
    moved = {}
    for key, value in (("start", start), ("end", end)):
        instant = datetime.fromisoformat(value["dateTime"]) + delta
        moved[key] = {"dateTime": instant.isoformat()} | (
            {"timeZone": value["timeZone"]} if "timeZone" in value else {}
        )
    return moved


def google_rule(rng: random.Random, event: dict[str, Any]) -> list[str]:
    """A new rule for a series (another COUNT or frequency), keeping its EXDATEs."""
    others = [line for line in event.get("recurrence", []) if not line.startswith("RRULE")]
    frequency = rng.choice(("WEEKLY", "DAILY"))
    return [f"RRULE:FREQ={frequency};COUNT={rng.randrange(2, 8)}", *others]
