"""The API and a Google pull agree with an independent RFC 5545 implementation.

The few-examples half of issue 17's differential test (the bulk, at the domain level,
is tests/unit/domain/test_rfc5545_differential.py and test_rfc5545_corpus.py): series
are created through ``POST /events`` (generated ones) or inserted at Google by another
client with the google client library and pulled by calsync (series of the corpus),
then listed with ``GET /events?expand=true``, every page, and compared by start with
recurring-ical-events (`tests/rfc5545_oracle.py`, decision O1); an instance moved
through the API is compared with the oracle given the move as a RECURRENCE-ID override.
On both databases.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from calsync.domain.errors import NeverOccurs, ValidationError
from calsync.domain.models import EventTime
from calsync.domain.recurrence import validate_recurrence
from calsync.domain.validation import SUB_DAILY_FREQUENCIES
from tests.integration.events.conftest import EventsApp, User
from tests.rfc5545_corpus import load, windows
from tests.rfc5545_oracle import Series, Start, Window, calsync_starts, oracle_starts
from tests.rfc5545_rules import Case, cases

pytestmark = pytest.mark.integration

DAILY_OR_LONGER = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")


def listed(app: EventsApp, user: User, window: Window, title: str | None = None) -> list[Start]:
    """The starts of every instance `GET /events?expand=true` lists in `window` (of the
    events titled `title`, if given)."""
    found: list[Start] = []
    params = {
        "start_date": window.start.isoformat(),
        "end_date": window.end.isoformat(),
        "expand": "true",
        "limit": "200",
    }
    while True:
        answer = app.client.get("/events", params=params, headers=user.headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found += [
            _start(e["start_time"]) for e in page["events"] if title is None or e["title"] == title
        ]
        if page["next_cursor"] is None:
            return sorted(found)
        params["cursor"] = page["next_cursor"]


def _start(text: str) -> Start:
    if len(text) == len("2031-01-01"):
        return date.fromisoformat(text)
    return datetime.fromisoformat(text).astimezone(UTC)


def body(series: Series) -> dict[str, Any]:
    if series.start.day is not None and series.end.day is not None:
        return {
            "title": "differential",
            "start_time": series.start.day.isoformat(),
            "end_time": series.end.day.isoformat(),
            "all_day": True,
            "recurrence": list(series.recurrence),
        }
    assert series.start.instant is not None
    assert series.end.instant is not None
    return {
        "title": "differential",
        "start_time": series.start.instant.isoformat(),
        "end_time": series.end.instant.isoformat(),
        "timezone": series.start.timezone,
        "recurrence": list(series.recurrence),
    }


def google_body(series: Series, title: str = "differential") -> dict[str, Any]:
    zone = series.start.timezone
    assert zone is not None
    return {
        "summary": title,
        "start": {"dateTime": series.start.local().isoformat(), "timeZone": zone},
        "end": {"dateTime": series.end.local().isoformat(), "timeZone": zone},
        "recurrence": list(series.recurrence),
    }


def _within_a_listing(window: Window) -> Window:
    """The window cut to the 400 days a listing may span."""
    return Window(window.start, min(window.end, window.start + timedelta(days=400)))


_USERS: dict[int, User] = {}
"""The user of each app the examples of one test share (Hypothesis reuses the fixture)."""


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(case=cases(freqs=DAILY_OR_LONGER))
def test_the_api_lists_what_the_oracle_expands(any_app: EventsApp, case: Case) -> None:
    # Given a generated series created through the API (a rule calsync refuses: a 422)
    app = any_app
    user = _USERS.get(id(app)) or _USERS.setdefault(id(app), app.connect("oracle@example.com"))
    series, window = case.series, _within_a_listing(case.window)
    answer = app.client.post("/events", json=body(series), headers=user.headers)
    if answer.status_code == 422:
        event("refused")
        try:
            got = calsync_starts(series, window)
        except ValidationError:
            return  # a rule calsync's expansion refuses too
        # a rule that never occurs: the API refuses it, a pulled series lists its start (R5)
        with pytest.raises(NeverOccurs):
            validate_recurrence(series.recurrence, series.start)
        assert got == oracle_starts(series, window)
        return
    assert answer.status_code == 201, answer.text
    try:
        # When its instances are listed over the window, every page
        got = listed(app, user, window)
        # Then they are the oracle's
        assert got == oracle_starts(series, window)
    finally:
        app.client.delete(f"/events/{answer.json()['id']}", headers=user.headers)


def _pullable(series: Series) -> bool:
    if series.all_day or series.start.timezone is None:
        return False
    try:
        counts = [len(calsync_starts(series, w)) for w in windows(series)]
    except ValidationError:
        return False
    return 0 < max(counts) < 900 and series.duration > timedelta(0)


def _google_holds(series: Series) -> bool:
    """Whether Google would store `series`: not with an RRULE more often than daily
    (decision JO1), however well calsync expands one."""
    rules = (line.upper() for line in series.recurrence if line.upper().startswith("RRULE"))
    return not any(f"FREQ={freq}" in rule for rule in rules for freq in SUB_DAILY_FREQUENCIES)


PULLED = [s for s in [s for s in load() if _pullable(s)][::15] if _google_holds(s)]


def test_a_google_pull_lists_what_the_oracle_expands(any_app: EventsApp) -> None:
    # Given real-world series inserted at Google by another client (the google client
    # library against the emulator)
    app = any_app
    user = app.connect("pulled@example.com")
    google = app.remote(user)
    for number, series in enumerate(PULLED):
        google.insert(calendarId=user.primary, body=google_body(series, f"s{number}")).execute()
    assert len(PULLED) >= 20
    # When calsync pulls the calendar and lists each series' windows through the API
    app.pull(user)
    differences = []
    for number, series in enumerate(PULLED):
        for window in windows(series):
            # Then each series lists exactly the oracle's instances
            want = oracle_starts(series, window)
            if listed(app, user, window, f"s{number}") != want:
                differences.append((series.label, series.recurrence, window))
    assert differences == []


def test_issue_17_item_1_every_instance_of_a_window_is_listed(any_app: EventsApp) -> None:
    app = any_app
    user = app.connect("cap@example.com")
    start = EventTime.at(datetime(2031, 9, 2, 9, 0), "America/New_York")
    assert start.instant is not None
    series = Series(
        start,
        EventTime.at(start.instant + timedelta(minutes=10), "America/New_York"),
        ("RRULE:FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40",),
    )
    window = Window(start.instant - timedelta(days=1), start.instant + timedelta(days=60))
    app.create(user, body(series))
    want = oracle_starts(series, window)
    assert len(want) > 1400
    assert listed(app, user, window) == want


def test_issue_17_item_6_two_rrules_pulled_from_google(any_app: EventsApp) -> None:
    app = any_app
    user = app.connect("two-rules@example.com")
    start = EventTime.at(datetime(2031, 1, 6, 9, 0), "Europe/Berlin")
    assert start.instant is not None
    series = Series(
        start,
        EventTime.at(start.instant + timedelta(minutes=30), "Europe/Berlin"),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4", "RRULE:FREQ=MONTHLY;BYMONTHDAY=15;COUNT=2"),
    )
    app.remote(user).insert(calendarId=user.primary, body=google_body(series)).execute()
    app.pull(user)
    window = Window(start.instant - timedelta(days=1), start.instant + timedelta(days=90))
    want = oracle_starts(series, window)
    assert len(want) == 5  # the start counts towards each rule's COUNT (decision O1)
    assert listed(app, user, window) == want


def test_issue_17_item_6_a_rule_that_never_occurs_pulled_from_google(any_app: EventsApp) -> None:
    app = any_app
    user = app.connect("never@example.com")
    start = EventTime.at(datetime(2031, 1, 6, 9, 0), "Europe/Berlin")
    assert start.instant is not None
    series = Series(
        start,
        EventTime.at(start.instant + timedelta(minutes=30), "Europe/Berlin"),
        ("RRULE:FREQ=WEEKLY;UNTIL=20301231T000000Z",),
    )
    app.remote(user).insert(calendarId=user.primary, body=google_body(series)).execute()
    app.pull(user)
    window = Window(start.instant - timedelta(days=1), start.instant + timedelta(days=30))
    want = oracle_starts(series, window)
    assert want == [start.instant]
    assert listed(app, user, window) == want


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    case=cases(all_day=False, freqs=DAILY_OR_LONGER),
    pick=st.integers(0, 15),
    quarters=st.integers(-96, 96),
)
def test_an_instance_moved_through_the_api_is_where_the_oracle_puts_it(
    any_app: EventsApp, case: Case, pick: int, quarters: int
) -> None:
    # Given a generated series created through the API, and one of its instances moved
    # by up to a day either way, staying within the series' first and last instance
    # (moving it outside is issue 17 item 2, pinned below)
    app = any_app
    user = _USERS.get(id(app)) or _USERS.setdefault(id(app), app.connect("oracle@example.com"))
    series = case.series
    assert series.start.instant is not None
    answer = app.client.post("/events", json=body(series), headers=user.headers)
    if answer.status_code == 422:
        event("refused")
        return
    assert answer.status_code == 201, answer.text
    created = answer.json()
    try:
        first = series.start.instant - timedelta(days=1)
        instants = [
            at
            for at in oracle_starts(series, Window(first, first + timedelta(days=400)))
            if isinstance(at, datetime)
        ]
        if len(instants) < 2:
            event("not moved: fewer than two instances")
            return
        original = instants[min(pick, len(instants) - 1)]
        new = original + quarters * timedelta(minutes=15)
        if not instants[0] <= new <= instants[-1] or new in instants:
            event("not moved: outside the series' span")
            return
        moved = app.put(
            user,
            f"{created['id']}_{original:%Y%m%dT%H%M%SZ}",
            {
                "start_time": new.isoformat(),
                "end_time": (new + series.duration).isoformat(),
            },
        )
        assert moved.status_code == 200, moved.text
        # When the series is listed over its window and around the moved instance
        near = Window(new - timedelta(days=2), new + timedelta(days=2))
        for window in (_within_a_listing(case.window), near):
            # Then the instances are the oracle's, the moved one at its new start
            want = oracle_starts(series, window, {original: new})
            assert listed(app, user, window) == want
    finally:
        app.client.delete(f"/events/{created['id']}", headers=user.headers)


def test_issue_17_item_2_an_instance_moved_outside_the_span(any_app: EventsApp) -> None:
    app = any_app
    user = app.connect("moved@example.com")
    start = EventTime.at(datetime(2031, 1, 6, 9, 0), "Europe/Berlin")
    assert start.instant is not None
    series = Series(
        start,
        EventTime.at(start.instant + timedelta(minutes=30), "Europe/Berlin"),
        ("RRULE:FREQ=WEEKLY;COUNT=3",),
    )
    created = app.create(user, body(series))
    original = datetime(2031, 1, 13, 8, 0, tzinfo=UTC)
    new = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)
    moved = app.put(
        user,
        f"{created['id']}_{original:%Y%m%dT%H%M%SZ}",
        {"start_time": new.isoformat(), "end_time": (new + timedelta(minutes=30)).isoformat()},
    )
    assert moved.status_code == 200, moved.text
    window = Window(datetime(2031, 2, 25, tzinfo=UTC), datetime(2031, 3, 5, tzinfo=UTC))
    assert oracle_starts(series, window, {original: new}) == [new]
    assert listed(app, user, window) == [new]
