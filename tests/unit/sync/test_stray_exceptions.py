"""Exceptions whose series no longer makes their instance are stored cancelled, as Google
shows them (decision JH1); every other listed event is left as listed."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest

from calsync.domain.models import Event, EventStatus, EventTime
from calsync.sync.stray_exceptions import masters_wanted, stray_cancelled


def berlin(day: int, hour: int = 9) -> EventTime:
    return EventTime.at(datetime(2031, 1, day, hour), "Europe/Berlin")


# a weekly series of Mondays 6, 13 and 20 January 2031 (cut short by a split: UNTIL)
MASTER = Event(
    title="Review",
    start=berlin(6),
    end=berlin(6, 10),
    recurrence=("RRULE:FREQ=WEEKLY;UNTIL=20310120T080000Z",),
    provider_event_id="m",
    etag='"1"',
)


def exception_of(master: Event, original: EventTime, **changes: object) -> Event:
    return dataclasses.replace(
        master,
        recurrence=(),
        provider_event_id=f"{master.provider_event_id}_x{original}",
        recurring_event_id=master.provider_event_id,
        original_start=original,
        title="by Google",
        **changes,  # type: ignore[arg-type]
    )


def test_an_exception_past_its_series_end_is_stored_cancelled() -> None:
    # Given a listing with the cut series and a renamed instance of 3 February
    stray = exception_of(MASTER, EventTime.at(datetime(2031, 2, 3, 9), "Europe/Berlin"))
    kept = exception_of(MASTER, berlin(13), start=berlin(13, 11), end=berlin(13, 12))
    latest = {"m": MASTER, "s": stray, "k": kept}

    # When the stray exceptions are judged
    replaced = stray_cancelled(latest, {})

    # Then only the one past the series' end is cancelled, the moved one in place stays
    assert replaced == 1
    assert latest["s"] == dataclasses.replace(stray, status=EventStatus.CANCELLED)
    assert latest["k"] is kept
    assert latest["m"] is MASTER


def test_the_stored_master_judges_when_the_listing_has_none() -> None:
    stray = exception_of(MASTER, EventTime.at(datetime(2031, 1, 27, 9), "Europe/Berlin"))
    between = exception_of(MASTER, berlin(13, 10))  # not one of the series' starts
    latest = {"s": stray, "b": between}

    assert masters_wanted(latest) == ["m"]
    assert stray_cancelled(latest, {"m": MASTER}) == 2
    assert {e.status for e in latest.values()} == {EventStatus.CANCELLED}


@pytest.mark.parametrize(
    "master",
    [
        None,  # unknown master: left as listed
        dataclasses.replace(MASTER, status=EventStatus.CANCELLED),
        dataclasses.replace(MASTER, recurrence=()),
        dataclasses.replace(MASTER, recurrence=("RRULE:FREQ=WEEKLY",)),  # rule has it
    ],
)
def test_an_exception_is_left_as_listed_unless_its_known_series_lacks_it(
    master: Event | None,
) -> None:
    stray = exception_of(MASTER, EventTime.at(datetime(2031, 2, 3, 9), "Europe/Berlin"))
    latest = {"s": stray}

    assert stray_cancelled(latest, {"m": master} if master else {}) == 0
    assert latest["s"] is stray


@pytest.mark.parametrize("zone_offset_day", [date(2031, 1, 8), date(2031, 1, 15)])
def test_all_day_series_west_of_utc_keep_their_exceptions(zone_offset_day: date) -> None:
    # an all-day weekly series (sorted at midnight UTC): its days are found in any zone
    series = Event(
        title="Off",
        start=EventTime.on(date(2031, 1, 1)),
        end=EventTime.on(date(2031, 1, 2)),
        recurrence=("RRULE:FREQ=WEEKLY;COUNT=3",),
        provider_event_id="d",
        timezone="America/Los_Angeles",
    )
    latest = {"x": exception_of(series, EventTime.on(zone_offset_day))}

    assert stray_cancelled(latest, {"d": series}) == 0
    latest = {"y": exception_of(series, EventTime.on(date(2031, 1, 22)))}  # past COUNT
    assert stray_cancelled(latest, {"d": series}) == 1
