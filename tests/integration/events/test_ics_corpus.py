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

import os
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from tests.ics_import import Imported, ImportedFile, Instance, expected, order, read
from tests.integration.events.conftest import EventsApp, User
from tests.rfc5545_oracle import Window

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[2] / "data" / "ics_corpus"
ANN, BOB = "ann-ics@example.com", "bob-ics@example.com"

#: What Google's import leaves out of the committed corpus, by kind (see the module).
SKIPPED = Counter() if os.environ.get("JC_PROBE") else Counter({"RDATE period": 1, "override of no instance": 1, "cancelled event": 1})


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


def listed(app: EventsApp, user: User, calendar: Any, window: Window) -> list[Instance]:
    """The instances `GET /events?expand=true` lists in `window` for one calendar."""
    found: list[Instance] = []
    params = {
        "start_date": window.start.isoformat(),
        "end_date": window.end.isoformat(),
        "expand": "true",
        "limit": "200",
        "calendar_id": str(calendar),
    }
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


def put_at_google(google: Any, calendar: str, event: Imported) -> bool:
    """`event` as Google's import holds it: the event, then each override's change.
    False when Google refuses the event (a 400: a rule it cannot read, as
    ``RRULE:...;UNTL=20191023`` of a real file)."""
    try:
        made = google.import_(
            calendarId=calendar, body=event.google_body(iCalUID=event.uid or "no-uid")
        ).execute()
    except HttpError as refused:
        if refused.resp.status != 400:
            raise
        return False
    for change in event.overrides:
        instance = event.instance_id(made["id"], change.original)
        if change.start is None:
            google.delete(calendarId=calendar, eventId=instance).execute()
        else:
            google.patch(
                calendarId=calendar, eventId=instance, body=event.override_body(change)
            ).execute()
    return True


def shared_calendars(app: EventsApp, files: list[ImportedFile]) -> tuple[User, User, list[str]]:
    """Bob's calendar for each file (in the file's zone), shared with Ann as a reader;
    both users connected afterwards, so that their calendar lists hold them."""
    app.connect(BOB)
    ids = []
    for number, file in enumerate(files):
        made = app.control.add_calendar(BOB, f"{number} {file.name}", time_zone=file.zone)
        app.control.share(made["id"], ANN, "reader")
        ids.append(made["id"])
    return app.connect(ANN), app.connect(BOB), ids


def test_real_world_calendars_list_what_the_oracle_expands(any_app: EventsApp) -> None:
    app = any_app
    files = corpus()
    # Given each file imported at Google into a calendar of Bob's shared with Ann
    ann, bob, google_ids = shared_calendars(app, files)
    google = app.remote(bob)
    for file, google_id in zip(files, google_ids, strict=True):
        taken = [event for event in file.events if put_at_google(google, google_id, event)]
        file.skipped["refused by Google"] += len(file.events) - len(taken)
        file.events[:] = taken
    committed = files[: len(list(CORPUS.glob("*.ics")))]
    assert sum((f.skipped for f in committed), Counter()) == SKIPPED
    # When both users' calsync pulls each calendar
    for user in (ann, bob):
        for google_id in google_ids:
            app.pull(user, app.calendar_id(user, google_id))
    # Then each window of each file lists, for both, what recurring-ical-events expands
    differences = []
    compared = 0
    for file, google_id in zip(files, google_ids, strict=True):
        for window in file.windows() if file.events else []:
            want = expected([file], window)
            compared += len(want)
            for user in (ann, bob):
                got = listed(app, user, app.calendar_id(user, google_id), window)
                if got != want and os.environ.get("JC_PROBE"):
                    r = app.client.get("/events", params={"start_date": window.start.isoformat(), "end_date": window.end.isoformat(), "calendar_id": str(app.calendar_id(user, google_id))}, headers=user.headers)
                    print([(e["title"], e["start_time"], e["end_time"], e["original_start_time"], e["recurrence"]) for e in r.json()["events"]])
                    print(got)
                if got != want:
                    missing = list((Counter(want) - Counter(got)).elements())
                    extra = list((Counter(got) - Counter(want)).elements())
                    differences.append((user.email, file.name, window, missing[:4], extra[:4]))
    assert differences == [], "\n".join(map(repr, differences))
    assert compared > 300  # the windows hold the corpus' instances, not nothing
