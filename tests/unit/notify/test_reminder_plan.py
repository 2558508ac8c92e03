"""Reminder planning is pure: occurrences, lead times and channels in, due rows out."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from calsync.domain.models import Event, EventStatus, EventTime, Reminders
from calsync.notify import reminder_keys
from calsync.notify.reminders import PlannedReminder, plan_reminders, reminder_key

EVENT_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> EventTime:
    return EventTime.at(datetime(year, month, day, hour, minute), "Europe/Berlin")


def due_times(planned: list) -> list[datetime]:  # type: ignore[type-arg]
    return sorted(p.due_at for p in planned)


def test_one_row_per_lead_and_channel_due_lead_minutes_before_the_start() -> None:
    event = Event(start=berlin(2026, 3, 30, 9, 0), end=berlin(2026, 3, 30, 10, 0), title="Review")
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)

    planned = plan_reminders(
        event, event_id=EVENT_ID, leads=[30, 10], channels=["email", "push"], now=now
    )

    start = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert {(p.lead_minutes, p.channel) for p in planned} == {
        (30, "email"),
        (30, "push"),
        (10, "email"),
        (10, "push"),
    }
    assert {p.due_at for p in planned if p.lead_minutes == 30} == {start - timedelta(minutes=30)}
    assert all(p.creatable and p.occurrence_start == start for p in planned)
    assert {p.dedupe_key for p in planned} == {
        reminder_key(EVENT_ID, start, lead, channel)
        for lead in (30, 10)
        for channel in ("email", "push")
    }
    assert planned[0].payload["event"]["title"] == "Review"


def test_reminders_beyond_the_horizon_wait_for_a_later_refresh() -> None:
    event = Event(start=berlin(2026, 4, 10, 9, 0), end=berlin(2026, 4, 10, 10, 0))
    now = datetime(2026, 4, 8, 6, 0, tzinfo=UTC)  # start is 49 h away

    assert plan_reminders(event, event_id=EVENT_ID, leads=[10], channels=["email"], now=now) == []
    planned = plan_reminders(event, event_id=EVENT_ID, leads=[10, 120], channels=["email"], now=now)
    assert [p.lead_minutes for p in planned] == [120]


def test_an_ongoing_occurrence_is_kept_but_not_created_and_an_ended_one_is_gone() -> None:
    event = Event(start=berlin(2026, 3, 30, 9, 0), end=berlin(2026, 3, 30, 10, 0))
    during = datetime(2026, 3, 30, 7, 30, tzinfo=UTC)
    after = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)

    ongoing = plan_reminders(event, event_id=EVENT_ID, leads=[10], channels=["email"], now=during)
    assert [p.creatable for p in ongoing] == [False]
    assert plan_reminders(event, event_id=EVENT_ID, leads=[10], channels=["email"], now=after) == []


def test_a_series_keeps_its_local_time_across_the_spring_dst_change() -> None:
    # Given a daily 09:00 Europe/Berlin series; clocks go forward on 29 March 2026
    series = Event(
        start=berlin(2026, 3, 27, 9, 0),
        end=berlin(2026, 3, 27, 9, 30),
        recurrence=("RRULE:FREQ=DAILY",),
        provider_event_id="series1",
    )
    now = datetime(2026, 3, 28, 0, 0, tzinfo=UTC)

    planned = plan_reminders(series, event_id=EVENT_ID, leads=[10], channels=["email"], now=now)

    # Then each reminder is at 08:50 local: 07:50Z in winter time, 06:50Z in summer time
    assert due_times(planned) == [
        datetime(2026, 3, 28, 7, 50, tzinfo=UTC),
        datetime(2026, 3, 29, 6, 50, tzinfo=UTC),
    ]
    assert planned[0].payload["recurrence_id"] is not None


def test_a_series_keeps_its_local_time_across_the_autumn_dst_change() -> None:
    series = Event(
        start=EventTime.at(datetime(2026, 10, 30, 8, 0), "America/New_York"),
        end=EventTime.at(datetime(2026, 10, 30, 8, 30), "America/New_York"),
        recurrence=("RRULE:FREQ=DAILY;COUNT=10",),
        provider_event_id="s2",
    )
    now = datetime(2026, 10, 31, 13, 0, tzinfo=UTC)  # clocks go back on 1 November

    planned = plan_reminders(series, event_id=EVENT_ID, leads=[0], channels=["push"], now=now)

    assert due_times(planned) == [
        datetime(2026, 11, 1, 13, 0, tzinfo=UTC),  # 08:00 EST
        datetime(2026, 11, 2, 13, 0, tzinfo=UTC),
    ]


def test_exceptions_move_or_remove_one_instance() -> None:
    series = Event(
        start=berlin(2026, 6, 1, 9, 0),
        end=berlin(2026, 6, 1, 10, 0),
        recurrence=("RRULE:FREQ=DAILY",),
        provider_event_id="s3",
    )
    moved = Event(
        start=berlin(2026, 6, 2, 15, 0),
        end=berlin(2026, 6, 2, 16, 0),
        recurring_event_id="s3",
        original_start=berlin(2026, 6, 2, 9, 0),
        title="moved",
    )
    cancelled = Event(
        start=berlin(2026, 6, 3, 9, 0),
        end=berlin(2026, 6, 3, 10, 0),
        recurring_event_id="s3",
        original_start=berlin(2026, 6, 3, 9, 0),
        status=EventStatus.CANCELLED,
    )
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    planned = plan_reminders(
        series,
        [moved, cancelled],
        event_id=EVENT_ID,
        leads=[10],
        channels=["email"],
        now=now,
        horizon=timedelta(days=3),
    )

    assert due_times(planned) == [
        datetime(2026, 6, 2, 12, 50, tzinfo=UTC),  # the moved instance at 15:00 CEST
        datetime(2026, 6, 4, 6, 50, tzinfo=UTC),
    ]
    assert [p.payload["event"]["title"] for p in planned][:1] == ["moved"]


def test_all_day_events_begin_at_midnight_in_the_owners_zone_even_on_a_dst_day() -> None:
    # 8 March 2026: clocks go forward in New York; midnight is still EST (UTC-5)
    event = Event(start=EventTime.on(date(2026, 3, 8)), end=EventTime.on(date(2026, 3, 9)))
    now = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)

    planned = plan_reminders(
        event,
        event_id=EVENT_ID,
        leads=[60],
        channels=["email"],
        now=now,
        day_zone="America/New_York",
    )

    assert [p.occurrence_start for p in planned] == [datetime(2026, 3, 8, 5, 0, tzinfo=UTC)]
    assert [p.due_at for p in planned] == [datetime(2026, 3, 8, 4, 0, tzinfo=UTC)]
    # and it lasts 23 hours: the next midnight is already EDT
    assert planned[0].occurrence_end == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)


def test_an_all_day_event_with_its_own_zone_uses_it() -> None:
    event = Event(
        start=EventTime.on(date(2026, 7, 1)),
        end=EventTime.on(date(2026, 7, 2)),
        timezone="Asia/Tokyo",
    )
    now = datetime(2026, 6, 30, 0, 0, tzinfo=UTC)

    planned = plan_reminders(
        event, event_id=EVENT_ID, leads=[0], channels=["email"], now=now, day_zone="UTC"
    )

    assert [p.due_at for p in planned] == [datetime(2026, 6, 30, 15, 0, tzinfo=UTC)]


def test_nothing_for_cancelled_events_no_leads_or_no_channels() -> None:
    event = Event(start=berlin(2026, 3, 30, 9, 0), end=berlin(2026, 3, 30, 10, 0))
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    cancelled = Event(
        start=event.start, end=event.end, status=EventStatus.CANCELLED, reminders=Reminders()
    )

    assert (
        plan_reminders(cancelled, event_id=EVENT_ID, leads=[10], channels=["email"], now=now) == []
    )
    assert plan_reminders(event, event_id=EVENT_ID, leads=[], channels=["email"], now=now) == []
    assert plan_reminders(event, event_id=EVENT_ID, leads=[10], channels=[], now=now) == []


def test_a_recurrence_that_cannot_be_expanded_plans_nothing() -> None:
    series = Event(
        start=berlin(2026, 3, 30, 9, 0),
        end=berlin(2026, 3, 30, 10, 0),
        recurrence=("RRULE:FREQ=SOMETIMES",),
        provider_event_id="bad",
    )
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)

    assert plan_reminders(series, event_id=EVENT_ID, leads=[10], channels=["email"], now=now) == []


def _day(n: int, hour: int) -> EventTime:
    return EventTime.at(datetime(2026, 3, 30, hour, 0) + timedelta(days=n), "Europe/Berlin")


def _daily_with_moves(*moves: tuple[int, int]) -> tuple[Event, list[Event]]:
    """A daily series at 09:00 Berlin from 30 March and exceptions moving the instance of
    day `a` onto the start of day `b` for each (a, b) of `moves`."""
    master = Event(
        start=berlin(2026, 3, 30, 9, 0),
        end=berlin(2026, 3, 30, 10, 0),
        title="Stand-up",
        recurrence=("RRULE:FREQ=DAILY;COUNT=5",),
        provider_event_id="standup",
    )
    exceptions = [
        Event(
            start=_day(b, 9),
            end=_day(b, 10),
            title=f"Stand-up (day {a})",
            recurring_event_id="standup",
            original_start=_day(a, 9),
            provider_event_id=f"standup_{a}",
        )
        for a, b in moves
    ]
    return master, exceptions


def _ten_days(master: Event, exceptions: list[Event], now: datetime) -> list[PlannedReminder]:
    """The series' email reminders 10 minutes before, planned ten days ahead."""
    return plan_reminders(
        master,
        exceptions,
        event_id=EVENT_ID,
        leads=[10],
        channels=["email"],
        now=now,
        horizon=timedelta(days=10),
    )


def test_an_instance_moved_onto_another_has_its_own_key_and_the_unmoved_one_keeps_its_own() -> None:
    master, exceptions = _daily_with_moves((1, 0))
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    planned = plan_reminders(
        master, exceptions, event_id=EVENT_ID, leads=[10], channels=["email"], now=now
    )
    start = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    at_start = [p for p in planned if p.occurrence_start == start]
    by_title = {p.payload["event"]["title"]: p.dedupe_key for p in at_start}
    assert by_title == {
        "Stand-up": reminder_key(EVENT_ID, start, 10, "email"),
        "Stand-up (day 1)": reminder_key(
            EVENT_ID, start, 10, "email", original=start + timedelta(days=1)
        ),
    }


def test_of_two_instances_moved_onto_one_start_the_earliest_original_keeps_the_plain_key() -> None:
    master, exceptions = _daily_with_moves((0, 3), (2, 3), (3, 1))
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    planned = _ten_days(master, exceptions, now)
    start = datetime(2026, 4, 2, 7, 0, tzinfo=UTC)
    keys = {
        p.payload["event"]["title"]: p.dedupe_key for p in planned if p.occurrence_start == start
    }
    assert keys == {
        "Stand-up (day 0)": reminder_key(EVENT_ID, start, 10, "email"),
        "Stand-up (day 2)": reminder_key(
            EVENT_ID, start, 10, "email", original=start - timedelta(days=1)
        ),
    }
    assert len({p.dedupe_key for p in planned}) == len(planned)


def test_a_long_occurrence_keeps_its_key_after_the_other_one_of_its_start_ends() -> None:
    # An instance moved onto day 0's start and lasting four days; and, ranked on their
    # original starts, day 1's moved onto day 3 (short) and day 2's (long) too (IJ2)
    # (day 3's own instance moved away: no unmoved instance at its start)
    master, exceptions = _daily_with_moves((2, 0), (1, 3), (4, 3), (3, 5))
    exceptions[0] = dataclasses.replace(exceptions[0], end=_day(4, 9))
    exceptions[2] = dataclasses.replace(exceptions[2], end=_day(7, 9))
    long_ones = {"Stand-up (day 2)", "Stand-up (day 4)"}

    def keys(now: datetime) -> dict[str, str]:
        planned = _ten_days(master, exceptions, now)
        return {
            title: p.dedupe_key
            for p in planned
            if (title := p.payload["event"]["title"]) in long_ones
        }

    before = keys(datetime(2026, 3, 29, 12, 0, tzinfo=UTC))
    assert len(before) == 2
    assert all(key.count("|") == 5 for key in before.values())  # original starts named
    # when the short ones ended more than two days ago and the long ones go on
    for day, going_on in ((3, long_ones), (6, {"Stand-up (day 4)"})):
        after = keys(datetime(2026, 3, 30, 12, 0, tzinfo=UTC) + timedelta(days=day))
        assert after == {title: before[title] for title in going_on}, day


def test_a_series_of_long_occurrences_costs_one_more_expansion_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review RY3: an hourly series whose occurrences last a month has ~670 of them that
    began before the planner's window and still run. IJ2 expanded the series once per
    such start (each window overlapping ~720 occurrences): seconds of CPU per plan, on
    every create, edit and refresh of it. Now one expansion covers them all, with the
    same keys; one over the work allowed for a series ranks within the window (logged)
    rather than failing the plan."""
    master = Event(
        start=berlin(2026, 3, 1, 9, 0),
        end=berlin(2026, 3, 31, 9, 0),
        title="Watch",
        recurrence=("RRULE:FREQ=HOURLY",),
        provider_event_id="watch",
    )
    calls: list[tuple[datetime, datetime]] = []
    real = reminder_keys.expand

    def counted(series: Event, start: datetime, end: datetime, *args: Any, **kw: Any) -> Any:
        calls.append((start, end))
        return real(series, start, end, *args, **kw)

    monkeypatch.setattr(reminder_keys, "expand", counted)
    now = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    planned = plan_reminders(master, [], event_id=EVENT_ID, leads=[10], channels=["email"], now=now)
    assert len(calls) <= 1, len(calls)
    assert len(planned) > 700  # not vacuous: the running ones, late, and the next ones
    assert len({p.dedupe_key for p in planned}) == len(planned)
    # a year-long hourly series: the one expansion is over the work allowed
    calls.clear()
    yearly = dataclasses.replace(master, end=berlin(2027, 3, 1, 9, 0))
    planned = plan_reminders(
        yearly,
        [],
        event_id=EVENT_ID,
        leads=[10],
        channels=["email"],
        now=datetime(2027, 5, 10, 12, 0, tzinfo=UTC),
    )
    assert len(calls) <= 1, len(calls)
    assert planned
