"""The reminders a sync and the periodic refresh plan are the old full computation's (ID1:
every new row read back, its exceptions' masters found from them).

Generated calendars (series with COUNT, UNTIL and open rules, EXDATEs, moved and
cancelled instances, orphaned exceptions, all-day events with and without a zone, events
just inside and just outside the horizon and the longest lead time) of several users with
different preferences and zones go through a first sync (`apply_changes`, a full
listing), an incremental pull moving, cancelling and adding events, and
`refresh_reminders` a day later, once as calsync plans now and once with the shortcut
undone; the reminder rows of each step must be the same. The first sync is also checked
against the per-event planner (`reschedule_reminders` of every row, from nothing).
"""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.conflicts import ConflictPolicy
from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus, EventTime, Reminders
from calsync.domain.recurrence import expand
from calsync.notify.on_event_change import reschedule_reminders
from calsync.notify.preferences import Preferences, save_preferences
from calsync.notify.reminders import refresh_reminders
from calsync.store.tables import Event as EventRow
from calsync.store.tables import NotificationDelivery
from calsync.sync import reconcile
from calsync.sync.reconcile import CalendarRef, apply_changes
from tests.integration.notify.conftest import BOX, add_calendar, add_user

pytestmark = pytest.mark.integration

#: Europe moves its clocks the next night.
NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
HORIZON = timedelta(hours=48)
ZONES = ["UTC", "America/Los_Angeles", "Pacific/Kiritimati", "Asia/Kolkata", "Europe/Berlin"]
USERS: list[tuple[str, Preferences | None]] = [
    ("UTC", None),
    ("Pacific/Kiritimati", Preferences(reminder_minutes=(40_320, 5))),
    ("America/Los_Angeles", Preferences(reminder_minutes=(0, 1440), channels=("email", "in_app"))),
    ("Asia/Kolkata", Preferences(reminder_minutes=())),
    ("Pacific/Kiritimati", None),
]
LEADS = [0, 5, 10, 60, 1440, 40_320]
EVENT_REMINDERS = [
    Reminders(),
    Reminders.minutes(10),
    Reminders.minutes(0, 60),
    Reminders.minutes(1440),
    Reminders.minutes(40_320),
    Reminders(use_default=False),
]
RULES = [
    "RRULE:FREQ=DAILY",
    "RRULE:FREQ=WEEKLY",
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
    "RRULE:FREQ=DAILY;COUNT={count}",
    "RRULE:FREQ=WEEKLY;UNTIL={until}",
    "RRULE:FREQ=MONTHLY",
    "RRULE:FREQ=YEARLY",
    "RRULE:FREQ=HOURLY;INTERVAL=5;COUNT=200",
    "RRULE:FREQ=MINUTELY;INTERVAL=50;COUNT=300",
]


def _offset(rng: random.Random) -> timedelta:
    """A start's distance from now: at the edges of the horizon and the lead times, or
    anywhere from three days ago to five weeks ahead."""
    if rng.random() < 0.6:
        edge = HORIZON + timedelta(minutes=rng.choice(LEADS))
        edge += rng.choice([timedelta(0), timedelta(days=1), -timedelta(days=1)])
        edge = rng.choice([edge, timedelta(0), -timedelta(minutes=30)])
        return edge + timedelta(minutes=rng.choice([-1, 0, 1]))
    return timedelta(minutes=rng.randint(-3 * 24 * 60, 35 * 24 * 60))


def _times(rng: random.Random, start: datetime, all_day: bool) -> tuple[EventTime, EventTime]:
    if all_day:
        day = start.date()
        return EventTime.on(day), EventTime.on(day + timedelta(days=rng.choice([1, 1, 2])))
    zone = rng.choice(ZONES)
    length = timedelta(minutes=rng.choice([0, 30, 60, 24 * 60, 3 * 24 * 60]))
    return EventTime.at(start, zone), EventTime.at(start + length, zone)


def _single(rng: random.Random, n: int) -> Event:
    all_day = rng.random() < 0.3
    start, end = _times(rng, NOW + _offset(rng), all_day)
    return Event(
        start=start,
        end=end,
        title=f"single {n}",
        timezone=rng.choice([None, *ZONES]) if all_day else None,
        reminders=rng.choice(EVENT_REMINDERS),
        provider_event_id=f"s{n}",
        etag=f'"{n}"',
    )


def _rule(rng: random.Random, start: datetime, all_day: bool) -> tuple[str, ...]:
    until = start + timedelta(days=rng.randint(1, 60))
    rule = rng.choice(RULES).format(
        count=rng.randint(1, 40),
        until=until.strftime("%Y%m%d") if all_day else until.strftime("%Y%m%dT%H%M%SZ"),
    )
    if all_day and ("HOURLY" in rule or "MINUTELY" in rule):
        rule = "RRULE:FREQ=DAILY"
    return (rule,)


def _series(rng: random.Random, n: int) -> tuple[Event, list[Event]]:
    """A series and its exceptions (moved, cancelled, retitled instances)."""
    all_day = rng.random() < 0.3
    begin = NOW - timedelta(days=rng.randint(0, 60)) + _offset(rng)
    start, end = _times(rng, begin, all_day)
    master = Event(
        start=start,
        end=end,
        title=f"series {n}",
        timezone=rng.choice([None, *ZONES]) if all_day else None,
        recurrence=_rule(rng, begin, all_day),
        reminders=rng.choice(EVENT_REMINDERS),
        provider_event_id=f"r{n}",
        etag=f'"r{n}"',
    )
    instances = expand(master, NOW - timedelta(days=3), NOW + timedelta(days=40), max_instances=60)
    picked = rng.sample(instances, min(len(instances), rng.randint(0, 4)))
    if picked and rng.random() < 0.5:
        master = dataclasses.replace(
            master, recurrence=(*master.recurrence, _exdate(picked.pop().start))
        )
    exceptions = [_exception(rng, master, i.start, k) for k, i in enumerate(picked)]
    return master, exceptions


def _exdate(value: EventTime) -> str:
    if value.day is not None:
        return f"EXDATE;VALUE=DATE:{value.day:%Y%m%d}"
    assert value.instant is not None
    return f"EXDATE:{value.instant:%Y%m%dT%H%M%SZ}"


def _exception(rng: random.Random, master: Event, original: EventTime, k: int) -> Event:
    kind = rng.choice(["moved", "cancelled", "retitled"])
    start, end = master.start, master.end
    if kind == "moved":
        start, end = _times(rng, NOW + _offset(rng), master.all_day)
    else:
        length = _length(master)
        start = original
        end = _shifted(original, length)
    return dataclasses.replace(
        master,
        start=start,
        end=end,
        timezone=master.timezone if master.all_day else None,
        title=f"{master.title} ({kind})",
        recurrence=(),
        status=EventStatus.CANCELLED if kind == "cancelled" else EventStatus.CONFIRMED,
        recurring_event_id=master.provider_event_id,
        original_start=original,
        provider_event_id=f"{master.provider_event_id}_{k}",
        etag=f'"{master.provider_event_id}_{k}"',
    )


def _length(event: Event) -> timedelta:
    if event.start.day is not None and event.end.day is not None:
        return timedelta(days=(event.end.day - event.start.day).days)
    assert event.start.instant is not None
    assert event.end.instant is not None
    return event.end.instant - event.start.instant


def _shifted(value: EventTime, by: timedelta) -> EventTime:
    if value.day is not None:
        return EventTime.on(value.day + timedelta(days=by.days))
    assert value.instant is not None
    assert value.timezone is not None
    return EventTime.at(value.instant + by, value.timezone)


def calendar(seed: int, size: int = 40) -> list[Event]:
    """One user's listing: singles, series with their exceptions, an orphaned exception."""
    rng = random.Random(seed)
    listing: list[Event] = []
    for n in range(size):
        try:
            if rng.random() < 0.4:
                master, exceptions = _series(rng, n)
                listing += [master, *exceptions]
            else:
                listing.append(_single(rng, n))
        except ValidationError:
            continue  # a rule the generator got wrong: not what this test is about
    listing += _edges()
    soon = EventTime.at(NOW + timedelta(hours=3), "Europe/Berlin")
    listing.append(_moved_in(_weekly("gone", soon, timedelta(hours=1)), "gone_1"))
    listing += _moved_far()
    return listing


def _moved_far() -> list[Event]:
    """Instances the batched planner once missed (ID5, IE1, IE2): one moved past the end
    of a series whose rule ended before now, one moved before the start of a series that
    begins beyond the horizon, both to begin in three hours; and in a daily series, an
    instance moved onto the start of another (two occurrences at one instant)."""
    ended_start = EventTime.at(NOW - timedelta(days=21), "Asia/Kolkata")
    ended = dataclasses.replace(
        _weekly("ended", ended_start, timedelta(hours=1)), recurrence=("RRULE:FREQ=WEEKLY;COUNT=2",)
    )
    later = _weekly("later", EventTime.at(NOW + timedelta(days=30), "UTC"), timedelta(hours=1))
    daily_start = EventTime.at(NOW + timedelta(hours=5), "America/Los_Angeles")
    daily = dataclasses.replace(
        _weekly("daily", daily_start, timedelta(hours=1)), recurrence=("RRULE:FREQ=DAILY",)
    )
    onto = dataclasses.replace(
        daily,
        recurrence=(),
        title="daily (moved onto the first)",
        recurring_event_id="daily",
        original_start=_shifted(daily_start, timedelta(days=1)),
        provider_event_id="daily_1",
        etag='"daily_1"',
    )
    return [
        ended,
        dataclasses.replace(
            _moved_in(ended, "ended_1"), original_start=_shifted(ended_start, timedelta(days=7))
        ),
        later,
        _moved_in(later, "later_0"),
        daily,
        onto,
    ]


def _moved_in(master: Event, name: str) -> Event:
    """An exception of `master` (stored or not) moved to begin in three hours."""
    start = EventTime.at(NOW + timedelta(hours=3), "UTC")
    return dataclasses.replace(
        master,
        start=start,
        end=_shifted(start, timedelta(hours=1)),
        timezone=None,
        recurrence=(),
        recurring_event_id=master.provider_event_id,
        original_start=master.start,
        provider_event_id=name,
        etag=f'"{name}"',
    )


def _edges() -> list[Event]:
    """Weekly series whose next instance begins exactly at the latest start a reminder
    can be due for, and all-day ones, without a zone, on each day of the week (the owner's
    zone decides when their days begin)."""
    edges = []
    for lead in LEADS:
        start = NOW + HORIZON + timedelta(minutes=lead) - timedelta(days=7)
        edges.append(_weekly(f"edge{lead}", EventTime.at(start, "UTC"), timedelta(minutes=30)))
    for k in range(7):
        start = EventTime.on(NOW.date() - timedelta(days=14 - k))
        edges.append(_weekly(f"day{k}", start, timedelta(days=1)))
    return edges


def _weekly(name: str, start: EventTime, length: timedelta) -> Event:
    return Event(
        start=start,
        end=_shifted(start, length),
        title=name,
        recurrence=("RRULE:FREQ=WEEKLY",),
        reminders=Reminders.minutes(*LEADS[:5]),
        provider_event_id=name,
        etag=f'"{name}"',
    )


def changes(seed: int, listing: list[Event]) -> list[Event]:
    """An incremental listing: some events moved, cancelled or retitled, new ones added."""
    rng = random.Random(seed + 1)
    changed = []
    for event in rng.sample(listing, min(len(listing), 15)):
        kind = rng.choice(["moved", "cancelled", "retitled"])
        if kind == "moved" and not event.is_recurring:
            start, end = _times(rng, NOW + _offset(rng), event.all_day)
            zone = event.timezone if event.all_day else None
            event = dataclasses.replace(event, start=start, end=end, timezone=zone)
        elif kind == "cancelled":
            event = dataclasses.replace(event, status=EventStatus.CANCELLED)
        else:
            event = dataclasses.replace(event, title=event.title + " (new title)")
        changed.append(dataclasses.replace(event, etag=f'"{event.etag}-2"'))
    changed += [_single(rng, 1000 + n) for n in range(5)]
    # an exception of a series stored by the first sync, new in this listing
    changed.append(_moved_in(_edges()[0], "edge0_new"))
    return changed


@contextmanager
def old_computation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo ID1: every new row a candidate (`reschedule_many` reads each back)."""
    with monkeypatch.context() as patch:
        patch.setattr(
            reconcile, "reminder_candidates", lambda _s, inserted, **_: [i for i, _ in inserted]
        )
        yield


Rows = list[tuple[Any, ...]]


def _rows(session: Session, users: list[uuid.UUID]) -> Rows:
    """The reminder rows of `users`, named by user and Google id (ids differ per run)."""
    names = dict(
        session.execute(
            sa.select(EventRow.id, EventRow.google_event_id).where(EventRow.user_id.in_(users))
        ).all()
    )
    found = session.execute(
        sa.select(NotificationDelivery).where(NotificationDelivery.user_id.in_(users))
    ).scalars()
    return sorted(
        (
            users.index(d.user_id),
            names[d.event_id],
            d.dedupe_key.replace(str(d.event_id), str(names[d.event_id])),
            d.channel,
            d.lead_minutes,
            d.occurrence_start,
            d.due_at,
            d.status,
            json.dumps(d.payload, sort_keys=True),
        )
        for d in found
    )


def _user(session: Session, email: str, zone: str, prefs: Preferences | None) -> CalendarRef:
    """A new user in `zone` with `prefs` (the defaults if None) and a calendar of theirs."""
    user_id = add_user(session, email, timezone=zone)
    if prefs is not None:
        save_preferences(session, user_id, prefs, BOX)
    return CalendarRef(
        id=add_calendar(session, user_id), user_id=user_id, policy=ConflictPolicy.REMOTE_WINS
    )


def run(sessions: sessionmaker[Session], seed: int, tag: str) -> dict[str, Rows]:
    """The reminder rows after each step, for new users named by `tag`."""
    refs = []
    with sessions.begin() as session:
        for n, (zone, prefs) in enumerate(USERS):
            refs.append(_user(session, f"{tag}-{n}@example.com", zone, prefs))
    users = [ref.user_id for ref in refs]
    listings = [calendar(seed * 10 + n) for n in range(len(refs))]
    seen: dict[str, Rows] = {}

    def step(name: str, apply: Callable[[Session, CalendarRef, list[Event]], None]) -> None:
        with sessions.begin() as session:
            for ref, listing in zip(refs, listings, strict=True):
                apply(session, ref, listing)
        with sessions() as session:
            seen[name] = _rows(session, users)

    step("first sync", lambda s, ref, listing: _pulled(s, ref, listing, True, NOW))
    later = NOW + timedelta(hours=3)
    step(
        "incremental pull",
        lambda s, ref, listing: _pulled(s, ref, changes(seed, listing), False, later),
    )
    refresh_reminders(sessions, now=NOW + timedelta(hours=20), batch_size=7)
    with sessions() as session:
        seen["refresh"] = _rows(session, users)
    return seen


def _pulled(
    session: Session, ref: CalendarRef, listing: list[Event], full: bool, now: datetime
) -> None:
    apply_changes(
        session,
        ref,
        listing,
        full_listing=full,
        now=now,
        announce=False,
        recheck_after=timedelta(hours=1),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sync_and_refresh_plan_what_the_full_computation_plans(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    now = run(sessions, seed, f"now{seed}")
    with old_computation(monkeypatch):
        old = run(sessions, seed, f"old{seed}")
    assert now["first sync"], "the generated calendars plan some reminders"
    for step in ("first sync", "incremental pull", "refresh"):
        assert now[step] == old[step], step


def test_the_first_sync_plans_what_each_row_planned_alone_plans(
    sessions: sessionmaker[Session],
) -> None:
    refs = []
    with sessions.begin() as session:
        for n, (zone, prefs) in enumerate(USERS):
            refs.append(_user(session, f"alone-{n}@example.com", zone, prefs))
            _pulled(session, refs[-1], calendar(40 + n), True, NOW)
    users = [ref.user_id for ref in refs]
    with sessions.begin() as session:
        synced = _rows(session, users)
        session.execute(sa.delete(NotificationDelivery))
        ids = session.scalars(sa.select(EventRow.id).where(EventRow.user_id.in_(users))).all()
        for event_id in ids:
            reschedule_reminders(session, event_id, now=NOW)
        alone = _rows(session, users)
        session.rollback()
    # Everything, payloads included: instances moved past the end of a finished series,
    # before the start of a later one or onto another's start (ID5, IE1, IE2) as well.
    names = {r[1] for r in alone}
    assert {"ended", "later", "daily"} <= names
    assert synced == alone
    # And the periodic refresh, from nothing, plans the same rows.
    with sessions.begin() as session:
        session.execute(
            sa.delete(NotificationDelivery).where(NotificationDelivery.user_id.in_(users))
        )
    refresh_reminders(sessions, now=NOW, batch_size=7)
    with sessions() as session:
        assert _rows(session, users) == alone
