"""Real-world calendar files, imported at Google, pulled and listed as recurring-ical-events
expands them.

Each file of tests/data/ics_corpus (Google, Outlook/Exchange, Apple and Thunderbird
exports; see its README) goes into a calendar of its own that Bob owns and shares with
Ann (reader), put there as Google's import holds it (`tests/ics_import.py`): each UID an
event through ``events.import`` of the real google-api-python-client, each RECURRENCE-ID
override a change of that instance (``<id>_<original start>``: times and title) and each
cancelled one a deletion of it. Both users' calsync pulls the calendars; then, for each
file, two windows of 400 days are listed through ``GET /events?expand=true`` (every page)
for each user and compared with recurring-ical-events over the same window on the same
events: start and end (UTC instants, dates for all-day), titles as calsync stores them,
cancelled instances absent, changed ones where they now are. On both databases.

Where Google's import and the oracle read a file differently, Google is followed, and the
file's event is left out of both sides, counted in `ImportedFile.skipped` and pinned by
`SKIPPED` below: Google's ``recurrence`` lines are "RRULE, EXRULE, RDATE and EXDATE lines
... as specified in RFC5545" with dates or date-times (the events reference), so an RDATE
period has no place; a RECURRENCE-ID that names no instance of its series has no instance
at Google to change. UTC and floating times are read in the calendar's X-WR-TIMEZONE, as
Google's own exports mean them (what the x-wr-timezone package implements).

``CALSYNC_ICS_CORPUS=<dir>`` runs the same comparison over every ``*.ics`` of another
directory too (by hand: files that may not be committed here, e.g. a checkout of
recurring-ical-events' test calendars; its skipped counts are not pinned).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from googleapiclient.errors import HttpError

from calsync.domain.models import EventTime
from calsync.events import read_model
from calsync.store.tables import User as UserRow
from tests.ics_import import (
    TITLE_LIMIT,
    Imported,
    ImportedFile,
    Instance,
    Override,
    ZonedWindow,
    expected,
    order,
    read,
    stored,
)
from tests.integration.events.conftest import EventsApp, User
from tests.integration.events.test_read_model import Spy
from tests.rfc5545_oracle import Window, oracle_starts

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[2] / "data" / "ics_corpus"
ANN, BOB = "ann-ics@example.com", "bob-ics@example.com"
#: The users' own zones (``GET /me``): an all-day event is listed in a window when it is
#: dated on a day of the caller's zone that the window touches.
ZONES = {ANN: "Pacific/Kiritimati", BOB: "UTC"}
#: A window every committed file has instances in, listed for all calendars at once.
ALL_AT_ONCE = (datetime(2025, 2, 20, 11, tzinfo=UTC), datetime(2025, 4, 20, 11, tzinfo=UTC))

#: What Google's import leaves out of the committed corpus, by kind (see the module);
#: Google refuses ``RRULE:FREQ=DAILY;COUNT=5;UNTIL=...`` (RFC 5545: COUNT and UNTIL
#: "MUST NOT occur in the same 'recur'").
SKIPPED = Counter(
    {
        "RDATE period": 1,
        "override of no instance": 1,
        "cancelled event": 1,
        "refused by Google": 1,
    }
)


def corpus() -> list[ImportedFile]:
    files = [read(path) for path in sorted(CORPUS.glob("*.ics"))]
    extra = os.environ.get("CALSYNC_ICS_CORPUS")
    if extra:
        for path in sorted(Path(extra).glob("*.ics")):
            try:
                files.append(read(path))
            except ValueError:
                continue  # a file icalendar cannot read at all
    return files


def listed(
    app: EventsApp, user: User, calendar: Any, window: Window, limit: int = 200
) -> list[Instance]:
    """The instances `GET /events?expand=true` lists in `window` for one calendar (or,
    `calendar` None, for all of the user's), every page of `limit`."""
    found: list[Instance] = []
    params = {
        "start_date": window.start.isoformat(),
        "end_date": window.end.isoformat(),
        "expand": "true",
        "limit": str(limit),
    }
    if calendar is not None:
        params["calendar_id"] = str(calendar)
    while True:
        answer = app.client.get("/events", params=params, headers=user.headers)
        assert answer.status_code == 200, answer.text[:500]
        page = answer.json()
        for item in page["events"]:
            start, end = _time(item["start_time"]), _time(item["end_time"])
            assert item["all_day"] == (not isinstance(start, datetime))
            found.append(Instance(start, end, item["title"] or ""))
        if page["next_cursor"] is None:
            return sorted(found, key=order)
        params["cursor"] = page["next_cursor"]


def _time(text: str) -> date | datetime:
    if len(text) == len("2031-01-01"):
        return date.fromisoformat(text)
    return datetime.fromisoformat(text).astimezone(UTC)


def put_at_google(google: Any, calendar: str, event: Imported) -> str | None:
    """`event` as Google's import holds it: the event, then each override's change; the
    event's Google id. None when Google refuses the event (a 400: a rule it cannot read,
    as ``RRULE:...;UNTL=20191023`` of a real file)."""
    try:
        made = google.import_(
            calendarId=calendar, body=event.google_body(iCalUID=event.uid or "no-uid")
        ).execute()
    except HttpError as refused:
        if refused.resp.status != 400:
            raise
        return None
    for change in event.overrides:
        change_at_google(google, calendar, event, made["id"], change)
    return str(made["id"])


def change_at_google(
    google: Any, calendar: str, event: Imported, google_id: str, change: Override
) -> None:
    """One instance of `event` changed (or cancelled) at Google, as another client does."""
    instance = event.instance_id(google_id, change.original)
    if change.start is None:
        google.delete(calendarId=calendar, eventId=instance).execute()
    else:
        body = event.override_body(change)
        google.patch(calendarId=calendar, eventId=instance, body=body).execute()


def shared_calendars(app: EventsApp, files: list[ImportedFile]) -> tuple[User, User, list[str]]:
    """Bob's calendar for each file (in the file's zone), shared with Ann as a reader;
    both users connected afterwards, so that their calendar lists hold them."""
    app.connect(BOB)
    ids = []
    for number, file in enumerate(files):
        made = app.control.add_calendar(BOB, f"{number} {file.name}", time_zone=file.zone)
        app.control.share(made["id"], ANN, "reader")
        ids.append(made["id"])
    ann, bob = app.connect(ANN), app.connect(BOB)
    with app.services.sessions.begin() as session:
        for user in (ann, bob):
            zone = ZONES[user.email]
            session.execute(sa.update(UserRow).where(UserRow.id == user.id).values(timezone=zone))
    return ann, bob, ids


def differences(
    app: EventsApp, users: tuple[User, ...], files: list[ImportedFile], google_ids: list[str]
) -> tuple[list[Any], int]:
    """Each file's windows listed for each user against the oracle: the differences (who,
    file, window, up to 4 instances missing, up to 4 extra) and how many were compared."""
    found: list[Any] = []
    compared = 0
    for file, google_id in zip(files, google_ids, strict=True):
        for bounds in file.windows() if file.events else []:
            for user in users:
                window = ZonedWindow(bounds.start, bounds.end, ZONES.get(user.email, "UTC"))
                want = expected([file], window)
                compared += len(want)
                got = listed(app, user, app.calendar_id(user, google_id), window)
                found += _difference((user.email, file.name, window), want, got)
    for user in users:
        # and all the user's calendars at once, in pages of 37: the files' series
        # interleaved, timed and all-day, page after page
        window = ZonedWindow(*ALL_AT_ONCE, ZONES.get(user.email, "UTC"))
        want = expected(files, window)
        compared += len(want)
        got = listed(app, user, None, window, limit=37)
        found += _difference((user.email, "all calendars", window), want, got)
    return found, compared


def _difference(what: tuple[Any, ...], want: list[Instance], got: list[Instance]) -> list[Any]:
    """`[]`, or `what` with up to 4 instances missing and up to 4 extra (as multisets)."""
    if got == want:
        return []
    missing = list((Counter(want) - Counter(got)).elements())
    extra = list((Counter(got) - Counter(want)).elements())
    return [(*what, missing[:4], extra[:4])]


def google_listed(google: Any, calendar: str, window: Window) -> list[Instance]:
    """The instances Google itself lists in `window` (``events.list`` with
    ``singleEvents``, every page; times in UTC)."""
    found: list[Instance] = []
    token = None
    while True:
        page = google.list(
            calendarId=calendar,
            singleEvents=True,
            timeMin=window.start.isoformat(),
            timeMax=window.end.isoformat(),
            timeZone="UTC",
            maxResults=2500,
            pageToken=token,
        ).execute()
        for item in page["items"]:
            start, end = item["start"], item["end"]
            if "date" in start:
                when = (date.fromisoformat(start["date"]), date.fromisoformat(end["date"]))
            else:
                when = (_time(start["dateTime"]), _time(end["dateTime"]))
            found.append(Instance(*when, stored(item.get("summary", ""), TITLE_LIMIT)))
        token = page.get("nextPageToken")
        if token is None:
            return sorted(found, key=order)


def google_differences(google: Any, files: list[ImportedFile], google_ids: list[str]) -> list[Any]:
    """Each file's windows as Google (the emulator) expands them, against the oracle;
    Google places an all-day event's dates in the calendar's zone for ``timeMin`` and
    ``timeMax`` (the file's X-WR-TIMEZONE here)."""
    found: list[Any] = []
    for file, google_id in zip(files, google_ids, strict=True):
        for bounds in file.windows() if file.events else []:
            window = ZonedWindow(bounds.start, bounds.end, file.zone)
            got = google_listed(google, google_id, window)
            found += _difference(("google", file.name, window), expected([file], window), got)
    return found


def later_changes(event: Imported, window: Window) -> tuple[Override, ...]:
    """Two more changes Bob makes at Google to a series after the first pull: its second
    instance in `window` cancelled, its third moved a day later and renamed (none for a
    series with fewer instances there, or a single event)."""
    if not event.recurrence:
        return ()
    taken = {o.original for o in event.overrides}
    starts = [s for s in oracle_starts(event.series, window) if s not in taken]
    if len(starts) < 3:
        return ()
    moved = starts[2]
    if isinstance(moved, datetime):
        assert event.start.timezone is not None
        begin = EventTime.at(moved + timedelta(days=1), event.start.timezone)
        end = EventTime.at(moved + timedelta(days=1) + event.series.duration, event.start.timezone)
    else:
        begin = EventTime.on(moved + timedelta(days=1))
        end = EventTime.on(moved + timedelta(days=1) + event.series.duration)
    cancelled = Override(starts[1], None, None, event.title)
    return (cancelled, Override(moved, begin, end, f"moved: {event.title}"))


def change_later(
    google: Any, files: list[ImportedFile], google_ids: list[str], event_ids: list[list[str]]
) -> None:
    """Bob's changes at Google after the first pulls (`later_changes`), and the deletion
    of each file's first series that has changed instances (they go with it); `files`
    updated to say so."""
    for file, google_id, ids in zip(files, google_ids, event_ids, strict=True):
        doomed = next((n for n, e in enumerate(file.events) if e.overrides), None)
        for number, (event, event_id) in enumerate(zip(file.events, ids, strict=True)):
            if number == doomed:
                google.delete(calendarId=google_id, eventId=event_id).execute()
                continue
            changes = later_changes(event, file.windows()[0])
            for change in changes:
                change_at_google(google, google_id, event, event_id, change)
            file.events[number] = dataclasses.replace(event, overrides=event.overrides + changes)
        if doomed is not None:
            del file.events[doomed]


def test_real_world_calendars_list_what_the_oracle_expands(
    any_app: EventsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = any_app
    app.clock.now = datetime(2025, 7, 1, tzinfo=UTC)  # the read model's horizon: below
    files = corpus()
    # Given each file imported at Google into a calendar of Bob's shared with Ann
    ann, bob, google_ids = shared_calendars(app, files)
    google = app.remote(bob)
    event_ids: list[list[str]] = []
    for file, google_id in zip(files, google_ids, strict=True):
        made = [(e, put_at_google(google, google_id, e)) for e in file.events]
        file.skipped["refused by Google"] += sum(1 for _, made_id in made if made_id is None)
        file.events[:] = [e for e, made_id in made if made_id is not None]
        event_ids.append([made_id for _, made_id in made if made_id is not None])
    committed = files[: len(list(CORPUS.glob("*.ics")))]
    assert sum((f.skipped for f in committed), Counter()) == SKIPPED
    # (and Google itself lists each window as the oracle expands it)
    found = google_differences(google, files, google_ids)
    assert found == [], "\n".join(map(repr, found))
    # When both users' calsync pulls each calendar in full
    for user in (ann, bob):
        for google_id in google_ids:
            app.pull(user, app.calendar_id(user, google_id))
    # Then each window of each file lists, for both, what recurring-ical-events expands
    found, compared = differences(app, (ann, bob), files, google_ids)
    assert found == [], "\n".join(map(repr, found))
    assert compared > 2 * 2_900  # the windows hold the corpus' instances, not nothing
    # and so does the read model, filled around mid-2025 (the corpus' first windows)
    assert read_model.fill(app.services.sessions, app.clock())
    app.upkeep()
    monkeypatch.setattr(read_model, "page", spy := Spy())
    found, _ = differences(app, (ann, bob), files, google_ids)
    assert found == [], "\n".join(map(repr, found))
    assert spy.answered >= 2 * 7  # each user's first window of each committed file

    # When Bob cancels and moves one more instance of each series at Google, and
    # deletes each file's first series with changed instances
    change_later(google, files, google_ids, event_ids)
    # and both users' calsync pulls the changes (incremental pulls), the model kept
    for user in (ann, bob):
        for google_id in google_ids:
            app.pull(user, app.calendar_id(user, google_id))
    app.upkeep()
    # Then the listings show the changes as the oracle does
    found, _ = differences(app, (ann, bob), files, google_ids)
    assert found == [], "\n".join(map(repr, found))


#: Texts anyone can put in a Google event, by name (the google client sends the lone
#: surrogate as a ``\ud800`` escape in its JSON).
HOSTILE = {
    "nul": "nul\x00inside\x00",
    "lone surrogate": "lone \ud800 high",
    "right-to-left": "\u202eevil\u202c \u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd",
    "emoji": "party \U0001f389 \U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001d518",
    "crlf": "line one\r\nline two\r\n",
    "html": '<script>alert("x")</script><b>bold</b> &amp; <a href="javascript:x">a</a>',
    "long": "long " + "y" * 1_500,
}
BIG_DESCRIPTION = "description " + "z\u00e9\U0001f600" * 33_000  # about 100 KB of text


def hostile_series(number: int, name: str, text: str) -> Imported:
    """A weekly series titled `text` (100 KB of description), its second instance
    changed at Google to the next hostile text, one hour later."""
    start = EventTime.at(datetime(2025, 3, 3 + number, 9, 0), "Europe/Berlin")
    end = EventTime.at(datetime(2025, 3, 3 + number, 10, 0), "Europe/Berlin")
    series = Imported(f"hostile-{name}", text, start, end, ("RRULE:FREQ=WEEKLY;COUNT=3",), "UTC")
    assert start.instant is not None
    original = start.instant + timedelta(days=7)
    other = list(HOSTILE.values())[(number + 1) % len(HOSTILE)]
    moved = Override(
        original,
        EventTime.at(original + timedelta(hours=1), "Europe/Berlin"),
        EventTime.at(original + timedelta(hours=2), "Europe/Berlin"),
        other,
        description=other,
    )
    return dataclasses.replace(series, description=BIG_DESCRIPTION, overrides=(moved,))


def test_hostile_texts_in_a_series_and_its_changed_instance_are_listed_expanded(
    any_app: EventsApp,
) -> None:
    app = any_app
    # Given, in a calendar of Bob's shared with Ann, a series per hostile text with 100 KB
    # of description, and one instance of each changed to another hostile text
    events = [hostile_series(n, name, text) for n, (name, text) in enumerate(HOSTILE.items())]
    file = ImportedFile("hostile", "UTC", events)
    ann, bob, (google_id,) = shared_calendars(app, [file])
    google = app.remote(bob)
    for event in events:
        assert put_at_google(google, google_id, event) is not None
    # When both users' calsync pulls it
    for user in (ann, bob):
        app.pull(user, app.calendar_id(user, google_id))
    window = Window(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
    want = expected([file], window)
    assert len(want) == 3 * len(HOSTILE)
    for user in (ann, bob):
        # Then the expanded listing is strict UTF-8 JSON with the oracle's instances,
        # the texts as calsync stores them (NUL and lone surrogates as U+FFFD, titles
        # cut to 1,024 characters)
        assert listed(app, user, app.calendar_id(user, google_id), window) == want
        answer = app.client.get(
            "/events",
            params={
                "start_date": window.start.isoformat(),
                "end_date": window.end.isoformat(),
                "expand": "true",
                "limit": "200",
                "calendar_id": str(app.calendar_id(user, google_id)),
            },
            headers=user.headers,
        )
        items = json.loads(answer.content.decode("utf-8", errors="strict"))["events"]
        descriptions = Counter(item["description"] for item in items)
        assert descriptions == Counter(
            {stored(BIG_DESCRIPTION): 2 * len(HOSTILE)}
            | {stored(text): 1 for text in HOSTILE.values()}
        )
