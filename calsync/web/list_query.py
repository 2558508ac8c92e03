"""The query string of ``GET /events`` -> `calsync.events.listing.ListQuery`, or a 422
naming the parameter (parsing, so it stays in the web layer: decision HK2).

Range: `start_date` and `end_date` are cut to `LISTED_FROM`..`LISTED_UNTIL` (0001-01-08
and 9999-12-25 UTC: the range a `datetime` holds, less a week at each end, which
expansion needs to look around a window). So ``start_date=0001-01-01&end_date=9999-12-31``
lists everything; a range that lies wholly past one end is a 422 naming the parameter.
An all-day item falls in the range when its dates overlap the range's days as the
caller sees them: the dates given (``YYYY-MM-DD``), or the days of the caller's zone
that the date-times touch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from calsync.domain.timezones import zone
from calsync.domain.windows import DayRange, days_touched
from calsync.events.changes_input import has_control_characters
from calsync.events.listing import ListQuery
from calsync.web import paging
from calsync.web.errors import APIError, unprocessable

__all__ = [
    "DEFAULT_PAGE",
    "LISTED_FROM",
    "LISTED_UNTIL",
    "MAX_EXPAND_DAYS",
    "MAX_PAGE",
    "parse_list_query",
]

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
MAX_EXPAND_DAYS: Final = 400
LISTED_FROM: Final = datetime(1, 1, 8, tzinfo=UTC)
LISTED_UNTIL: Final = datetime(9999, 12, 25, tzinfo=UTC)
_PARAMS: Final = frozenset(
    {"start_date", "end_date", "category", "calendar_id", "recurring", "expand", "limit", "cursor"}
)


def _bad(name: str, message: str) -> APIError:
    return unprocessable([{"field": name, "issue": "invalid", "message": message}])


def parse_list_query(params: Mapping[str, str], *, user_zone: str, scope: str = "") -> ListQuery:
    """The query of ``GET /events``. Dates are whole days in the caller's zone (`end_date`
    inclusive); date-times need an offset. ``limit`` and ``cursor`` follow the contract
    of every list (`calsync.web.paging`); `scope` is what its cursors are bound to."""
    unknown = sorted(set(params) - _PARAMS)
    if unknown:
        raise unprocessable(
            [{"field": n, "issue": "unknown", "message": "unknown parameter"} for n in unknown]
        )
    start = _moment("start_date", params.get("start_date"), user_zone, end=False)
    end = _moment("end_date", params.get("end_date"), user_zone, end=True)
    if (start is None) != (end is None):
        missing = "end_date" if end is None else "start_date"
        raise _bad(missing, "start_date and end_date go together")
    if start is not None and start >= LISTED_UNTIL:
        raise _bad(
            "start_date",
            f"must be before {LISTED_UNTIL.date().isoformat()}, the end of the listed range",
        )
    if end is not None and end <= LISTED_FROM:
        raise _bad(
            "end_date",
            f"must be after {LISTED_FROM.date().isoformat()}, the start of the listed range",
        )
    if start is not None and end is not None and end <= start:
        raise _bad("end_date", "must be after start_date")
    days = None
    if start is not None and end is not None:
        days = _days(params["start_date"], params["end_date"], start, end, user_zone)
    expand_flag = _flag("expand", params.get("expand")) or False
    if expand_flag:
        if start is None or end is None:
            raise _bad("start_date", "expand=true needs start_date and end_date")
        if end - start > timedelta(days=MAX_EXPAND_DAYS):
            raise _bad("end_date", f"an expanded range spans at most {MAX_EXPAND_DAYS} days")
    category = params.get("category") or None
    if category is not None and has_control_characters(category):
        raise _bad("category", "must not contain control characters (such as NUL)")
    calendar_id = None
    if params.get("calendar_id"):
        try:
            calendar_id = uuid.UUID(params["calendar_id"])
        except ValueError:
            raise _bad("calendar_id", "not a calendar id") from None
    return ListQuery(
        start=start,
        end=end,
        days=days,
        category=category,
        calendar_id=calendar_id,
        recurring=_flag("recurring", params.get("recurring")),
        expand=expand_flag,
        limit=paging.page_size(params, default=DEFAULT_PAGE, maximum=MAX_PAGE),
        after=_after(params, scope),
        scope=scope,
    )


def _moment(name: str, text: str | None, user_zone: str, *, end: bool) -> datetime | None:
    """The instant a query bound names, cut to `LISTED_FROM`..`LISTED_UNTIL`."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end and day == date.max:  # the day after it is past the calendar
                return LISTED_UNTIL
            day += timedelta(days=1 if end else 0)
            moment = datetime.combine(day, time(), tzinfo=zone(user_zone))
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(name, "give a date (YYYY-MM-DD) or a date-time with offset") from None
    if moment.tzinfo is None:
        raise _bad(name, "a date-time needs an offset (such as Z or +01:00)")
    return _within_listed(moment)


_LISTED_DAYS: Final = DayRange(LISTED_FROM.date(), LISTED_UNTIL.date())


def _days(
    start_text: str, end_text: str, start: datetime, end: datetime, user_zone: str
) -> DayRange:
    """The days of the range `[start, end)` (`_moment`s of the texts) as the caller sees
    them: a date bound names its day itself (`end_date` inclusive), a date-time bound
    the day of `user_zone` it falls in (`days_touched`); cut to the listed range.
    A range that touches no listed day is a 422 naming the parameter, as for instants."""
    touched = days_touched(start, end, user_zone)
    first = date.fromisoformat(start_text) if len(start_text) == 10 else touched.first
    after = touched.end
    if len(end_text) == 10:
        last = date.fromisoformat(end_text)
        after = last + timedelta(days=1) if last < date.max else last
    if first >= _LISTED_DAYS.end:
        raise _bad("start_date", f"must be before {_LISTED_DAYS.end}, the end of the listed range")
    if after <= _LISTED_DAYS.first:
        raise _bad("end_date", f"must be after {_LISTED_DAYS.first}, the start of the listed range")
    return DayRange(max(first, _LISTED_DAYS.first), min(after, _LISTED_DAYS.end))


def _within_listed(moment: datetime) -> datetime:
    """`moment`, or the end of the listed range it lies past. Compared without
    converting: a wall time of year 1 or 9999 may have no UTC equivalent."""
    if moment < LISTED_FROM:
        return LISTED_FROM
    if moment > LISTED_UNTIL:
        return LISTED_UNTIL
    return moment


def _flag(name: str, text: str | None) -> bool | None:
    if text is None or text == "":
        return None
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise _bad(name, "must be true or false")


def _after(params: Mapping[str, str], scope: str) -> tuple[datetime, str] | None:
    after = paging.read_cursor(params, scope)
    if after is not None:
        try:
            uuid.UUID(after[1].split("_", 1)[0])
        except ValueError:
            raise _bad("cursor", "not a cursor this API gave out") from None
    return after
