"""Whatever text anyone puts in a Google event, the calendar keeps syncing.

Bob shares a calendar with Ann (writer) and fills it through the Google client library,
as any other Google client could: in titles, descriptions, locations, attendee names
and emails, and extended properties, every kind of text Google's JSON carries (NUL,
lone surrogates, noncharacters, bidi controls, 70,000 characters, astral characters,
combining marks, right-to-left scripts, CRLF). On both databases, Ann's and Bob's
pulls (full, then incremental) succeed with the whole calendar, ``GET /events`` serves
it as valid JSON, and Ann's edit of another field of such an event leaves Google's
original texts alone (decisions H1).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Final

import pytest
import sqlalchemy as sa

from calsync.domain.conflicts import ConflictPolicy
from calsync.emulator.testing import build_calendar_service
from calsync.store.tables import Calendar, SyncLog
from calsync.sync.reconcile import CalendarRef, apply_changes
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

ANN, BOB = "ann@example.com", "bob@example.com"
MARK: Final = "\ufffd"
#: The texts, by name. Google's JSON carries each (the client library sends the
#: surrogates as ``\ud800``-style escapes).
HOSTILE: Final = {
    "nul": "nul\x00inside\x00",
    "high-surrogate": "lone \ud800 high",
    "low-surrogate": "lone \udfff low",
    "noncharacters": "non\uffff\ufffecharacters",
    "bidi": "\u202eevil\u202c \u2066isolated\u2069 \u200fmark",
    "long": "long " + "x" * 70_000,
    "astral": "emoji \U0001f600 \U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001d518",
    "combining": "e\u0301 Z\u0334\u0321\u0327a\u0336l\u0337g\u0338o\u0335",
    "right-to-left": "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd",
    "crlf": "line one\r\nline two\r\n",
}
#: Column lengths (characters) a text is cut to, ending in MARK.
LIMITS: Final = {"title": 1024, "location": 1024, "category": 64, "email": 320, "name": 200}
RANGE: Final = {"start_date": "2031-03-01", "end_date": "2031-03-31"}


def expected(text: str, limit: int | None = None) -> str:
    """What calsync stores of `text`: NUL and lone surrogates as U+FFFD, cut to `limit`."""
    made = "".join(MARK if ord(c) == 0 or 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return made if limit is None or len(made) <= limit else made[: limit - 1] + MARK


def body(name: str, text: str, day: int) -> dict[str, Any]:
    """An event with `text` in every text field Google has (within Google's own limits
    for extended properties: keys of 44 characters, values of 1024)."""
    return {
        "summary": text,
        "description": text,
        "location": text,
        "start": {"dateTime": f"2031-03-{day:02d}T10:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": f"2031-03-{day:02d}T11:00:00Z", "timeZone": "UTC"},
        "attendees": [
            {"email": f"{text}@example.com", "displayName": text},
            {"email": f"{name}@example.com", "displayName": text},
        ],
        "extendedProperties": {
            "private": {
                "calsync_category": text[:1024],
                "calsync_meta_note": text[:1024],
                "calsync_meta_" + text[:20]: "key",
            },
            "shared": {"note": text[:1024]},
        },
    }


def plain(day: int) -> dict[str, Any]:
    return {
        "summary": f"plain {day}",
        "start": {"dateTime": f"2031-03-{day:02d}T08:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": f"2031-03-{day:02d}T09:00:00Z", "timeZone": "UTC"},
    }


def listed(app: EventsApp, user: User) -> dict[str, dict[str, Any]]:
    """`GET /events` of the range, by Google id: the answer must be strict UTF-8 JSON."""
    answer = app.client.get("/events", params=RANGE | {"limit": "200"}, headers=user.headers)
    assert answer.status_code == 200, answer.text[:500]
    document = json.loads(answer.content.decode("utf-8", errors="strict"))
    assert document["next_cursor"] is None
    return {item["google_event_id"]: item for item in document["events"]}


def check_stored(item: dict[str, Any], name: str, text: str) -> None:
    """The API's item of an event made by `body(name, text)`."""
    assert item["title"] == expected(text, LIMITS["title"])
    assert item["description"] == expected(text)
    assert item["location"] == expected(text, LIMITS["location"])
    assert item["category"] == expected(text[:1024], LIMITS["category"])
    emails = {
        expected(f"{text}@example.com".strip().lower(), LIMITS["email"]),
        f"{name}@example.com",
    }
    assert {a["email"] for a in item["attendees"]} == emails
    assert {a["display_name"] for a in item["attendees"]} == {expected(text, LIMITS["name"])}
    assert item["metadata"] == {"note": expected(text[:1024]), expected(text[:20]): "key"}


def pull_ok(app: EventsApp, user: User, calendar_id: Any) -> None:
    """Pull the calendar; it must end ``ok`` with an ``ok`` log row."""
    app.pull(user, calendar_id)
    with app.services.sessions() as session:
        status = session.scalar(
            sa.select(Calendar.last_sync_status).where(Calendar.id == calendar_id)
        )
        logged = session.scalar(
            sa.select(SyncLog.sync_status)
            .where(SyncLog.calendar_id == calendar_id, SyncLog.kind.in_(("pull", "full_sync")))
            .order_by(SyncLog.sync_time.desc(), SyncLog.id.desc())
            .limit(1)
        )
    assert (status, logged) == ("ok", "ok")


def test_every_kind_of_text_google_sends_is_pulled_served_and_never_overwritten(
    any_app: EventsApp,
) -> None:
    app = any_app
    # Given Bob's calendar, shared with Ann as a writer, both connected to calsync
    bob = app.connect(BOB)
    team = app.control.add_calendar(BOB, "team")["id"]
    app.control.share(team, ANN, "writer")
    ann = app.connect(ANN)
    bob = app.connect(BOB)  # again: his calendar list now has the team calendar
    google = app.remote(bob)
    # and, put there by Bob through Google, an event per kind of text among plain ones
    ids = {}
    for day, (name, text) in enumerate(HOSTILE.items(), start=1):
        created = google.insert(calendarId=team, body=body(name, text, day)).execute()
        assert created["summary"] == text  # the emulator keeps what Google keeps
        ids[name] = created["id"]
    plain_ids = [google.insert(calendarId=team, body=plain(d)).execute()["id"] for d in (1, 2)]

    # When both users pull it in full
    anns, bobs = app.calendar_id(ann, team), app.calendar_id(bob, team)
    pull_ok(app, ann, anns)
    pull_ok(app, bob, bobs)

    # Then the whole calendar is there for each, served as valid JSON, texts storable
    for user in (ann, bob):
        items = listed(app, user)
        assert set(items) == {*ids.values(), *plain_ids}
        for name, text in HOSTILE.items():
            check_stored(items[ids[name]], name, text)

    # When Bob changes a plain event's title to the worst text and adds another event
    google.patch(calendarId=team, eventId=plain_ids[0], body={"summary": "\x00\ud800"}).execute()
    late = google.insert(calendarId=team, body=body("late", HOSTILE["nul"], 20)).execute()["id"]
    # Then Ann's incremental pull brings both
    pull_ok(app, ann, anns)
    items = listed(app, ann)
    assert items[plain_ids[0]]["title"] == MARK * 2
    check_stored(items[late], "late", HOSTILE["nul"])

    # When Ann changes only the location of the events whose texts calsync had to clean
    cleaned = ("nul", "high-surrogate", "low-surrogate", "long")
    for name in cleaned:
        answer = app.put(ann, items[ids[name]]["id"], {"location": f"room {name}"})
        assert answer.status_code == 200, answer.text[:500]
    app.push_all()

    # Then Google has her locations, and every other text of those events as Bob wrote it
    for name in cleaned:
        text = HOSTILE[name]
        on_google = google.get(calendarId=team, eventId=ids[name]).execute()
        assert on_google["location"] == f"room {name}"
        wanted = body(name, text, 1)
        assert (on_google["summary"], on_google["description"]) == (text, text)
        private = on_google["extendedProperties"]["private"]
        assert private.pop("calsync_id")  # calsync's tag, added by its write
        assert on_google["extendedProperties"] == wanted["extendedProperties"]
        assert {(a["email"], a.get("displayName")) for a in on_google["attendees"]} == {
            (a["email"], a["displayName"]) for a in wanted["attendees"]
        }
    # and the next pull keeps Ann's copies synced, with her locations
    pull_ok(app, ann, anns)
    after = listed(app, ann)
    for name in cleaned:
        assert after[ids[name]]["sync_state"] == "synced"
        assert after[ids[name]]["location"] == f"room {name}"
        assert after[ids[name]]["title"] == expected(HOSTILE[name], LIMITS["title"])


def test_an_event_that_breaks_calsyncs_rules_stays_editable_in_its_other_fields(
    any_app: EventsApp,
) -> None:
    """Google is not held to calsync's rules for what clients write: an inviter's event
    with no duration, a description of 9,000 characters, an attendee whose email has a
    space and a metadata key of another spelling must not make it read-only (H2)."""
    app = any_app
    ann = app.connect(ANN)
    google = app.remote(ann)
    odd = {
        "summary": "odd",
        "description": "d" * 9_000,
        "start": {"dateTime": "2031-03-05T10:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2031-03-05T10:00:00Z", "timeZone": "UTC"},
        "attendees": [{"email": "odd guest@example.com"}, {"email": "ok@example.com"}],
        "extendedProperties": {"private": {"calsync_meta_has space": "1"}},
    }
    google_id = google.insert(calendarId=ANN, body=odd).execute()["id"]
    pull_ok(app, ann, ann.calendar_id)
    item = listed(app, ann)[google_id]
    # When Ann changes its location only, it is accepted and reaches Google
    answer = app.put(ann, item["id"], {"location": "Room 2"})
    assert answer.status_code == 200, answer.text[:500]
    app.push_all()
    on_google = google.get(calendarId=ANN, eventId=google_id).execute()
    assert on_google["location"] == "Room 2"
    assert on_google["description"] == odd["description"]
    assert on_google["end"]["dateTime"] == "2031-03-05T10:00:00Z"
    # But a change that breaks a rule is still refused, naming the field, and changes nothing
    before = app.get(ann, item["id"])
    for change, field in (
        ({"description": "e" * 9_000}, "description"),
        ({"attendees": ["odd guest@example.com", "new guest@example.com"]}, "attendees"),
        ({"metadata": {"another key": "2"}}, "metadata"),
        ({"end_time": "2031-03-05T09:00:00Z"}, "end_time"),
        # a bad field named with the others (item 10) never names what is left as it was
        (
            {
                "start_time": "nope",
                "description": odd["description"],
                "attendees": ["odd guest@example.com", "ok@example.com"],
            },
            "start_time",
        ),
    ):
        refused = app.put(ann, item["id"], change)
        assert refused.status_code == 422, refused.text[:500]
        assert {d["field"] for d in refused.json()["error"]["details"]} == {field}
    assert app.get(ann, item["id"]) == before


def test_an_event_calsync_cannot_read_is_left_out_named_in_the_sync_log_and_the_rest_syncs(
    any_app: EventsApp,
) -> None:
    """Google's instance ids are the series' id, ``_`` and the instance's start: with a
    client-chosen id of 1,024 characters (the most Google allows), a changed instance has
    an id longer than any id calsync stores. Such an event is left out and said in each
    user's sync log; the calendar's other events sync, its status stays ``ok``."""
    app = any_app
    bob = app.connect(BOB)
    team = app.control.add_calendar(BOB, "team")["id"]
    app.control.share(team, ANN, "writer")
    ann = app.connect(ANN)
    bob = app.connect(BOB)
    google = app.remote(bob)
    # Given, in Bob's team calendar, a weekly series with the longest id Google takes, one
    # of its instances moved by an hour, and a plain event
    series_id = "v" * 1024
    series = plain(3) | {"id": series_id, "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]}
    google.insert(calendarId=team, body=series).execute()
    first = google.instances(calendarId=team, eventId=series_id).execute()["items"][0]
    moved = {"dateTime": "2031-03-03T12:00:00Z", "timeZone": "UTC"}
    exception = google.patch(
        calendarId=team, eventId=first["id"], body={"start": moved, "end": moved}
    ).execute()
    assert len(exception["id"]) > 1024
    plain_id = google.insert(calendarId=team, body=plain(5)).execute()["id"]

    for user in (ann, bob):
        # When each user pulls the calendar
        calendar_id = app.calendar_id(user, team)
        pull_ok(app, user, calendar_id)
        # Then the series and the plain event are there, the instance Google changed is not
        items = listed(app, user)
        assert set(items) == {series_id, plain_id}
        # And the user's sync log says so, naming the event as far as it can
        answer = app.client.get("/sync/logs", headers=user.headers)
        assert answer.status_code == 200, answer.text[:500]
        [entry] = [e for e in answer.json()["logs"] if e["calendar_id"] == str(calendar_id)]
        assert entry["status"] == "ok"
        assert entry["message"].startswith("1 Google event calsync cannot read left out")
        assert entry["details"]["unreadable"] == 1
        assert entry["details"]["unreadable_ids"] == [exception["id"][:1023] + MARK]


def test_a_full_listing_keeps_the_rows_of_events_it_could_not_read(any_app: EventsApp) -> None:
    """An event listed but unreadable is on Google: a full listing must not take it for
    deleted (`apply_changes`'s ``unreadable``), while it deletes what is really gone."""
    app = any_app
    ann = app.connect(ANN)
    google = app.remote(ann)
    kept, gone, other = (
        google.insert(calendarId=ANN, body=plain(day)).execute()["id"] for day in (1, 2, 3)
    )
    pull_ok(app, ann, ann.calendar_id)
    listing = app.services.providers.for_user(ann.id).list_all_changes(ANN, sync_token=None)
    remaining = [e for e in listing.events if e.provider_event_id == other]
    assert ann.calendar_id is not None
    ref = CalendarRef(id=ann.calendar_id, user_id=ann.id, policy=ConflictPolicy.REMOTE_WINS)
    with app.services.sessions.begin() as session:
        apply_changes(
            session,
            ref,
            remaining,
            full_listing=True,
            now=app.services.clock(),
            recheck_after=timedelta(hours=1),
            unreadable=frozenset({kept}),
        )
    assert set(listed(app, ann)) == {kept, other}
    assert gone not in listed(app, ann)


#: NUL, both lone surrogates and a text longer than any column, in one.
WORST: Final = "worst\x00 \ud800 \udfff " + "w" * 2_000


def test_the_worst_text_in_a_calendar_name_a_conference_and_a_status_event_is_stored(
    any_app: EventsApp,
) -> None:
    """The texts outside an event's own fields that another Google user chooses: the
    name of a calendar they share, a conference's address and solution, a working
    location's label. Each user's calendar list and pulls succeed and serve them
    storable."""
    app = any_app
    bob = app.connect(BOB)
    tokens = app.control.issue_tokens(BOB)
    service = build_calendar_service(app.google.url, tokens["access_token"])
    app.remotes.append(service)
    # Given Bob's calendar with a NUL in a long name, shared with Ann (the emulator's control
    # API, which shares it, answers in JSON that cannot hold a lone surrogate), and one of
    # his own with the worst name (made through Google's API, which can)
    shared_name = "team\x00 " + "w" * 2_000
    team = app.control.add_calendar(BOB, shared_name)["id"]
    app.control.share(team, ANN, "writer")
    mine = service.calendars().insert(body={"summary": WORST}).execute()["id"]
    ann = app.connect(ANN)
    bob = app.connect(BOB)
    # with an event whose conference Bob copied in, with the worst address and solution
    conference = {
        "conferenceSolution": {"key": {"type": WORST[:40]}, "name": WORST},
        "entryPoints": [{"entryPointType": "video", "uri": "https://" + WORST, "label": WORST}],
        "conferenceId": WORST[:40],
    }
    call = service.events().insert(
        calendarId=team, body=plain(6) | {"conferenceData": conference}, conferenceDataVersion=1
    )
    call_id = call.execute()["id"]
    # and, in Bob's own calendar, a working location with the worst label
    working = {
        "eventType": "workingLocation",
        "visibility": "public",
        "transparency": "transparent",
        "start": {"date": "2031-03-07"},
        "end": {"date": "2031-03-08"},
        "workingLocationProperties": {"type": "customLocation", "customLocation": {"label": WORST}},
    }
    where_id = service.events().insert(calendarId=BOB, body=working).execute()["id"]

    # Then both users' calendar lists name the calendars, storable
    for user in (ann, bob):
        answer = app.client.get("/calendars", headers=user.headers)
        assert answer.status_code == 200, answer.text[:500]
        names = {c["google_calendar_id"]: c["summary"] for c in answer.json()["calendars"]}
        assert names[team] == expected(shared_name, 1024)
        assert names.get(mine) == (expected(WORST, 1024) if user is bob else None)
    # And each user's pull of the shared calendar serves the conference, storable
    for user in (ann, bob):
        pull_ok(app, user, app.calendar_id(user, team))
        item = listed(app, user)[call_id]
        # (a conference text that cannot be stored as it is reads as absent: an address
        # calsync altered would lead nowhere)
        assert item["conference"] == {"status": "success", "uri": None, "solution": None}
    # And Bob's own pull serves the working location's label, made storable
    pull_ok(app, bob, app.calendar_id(bob, BOB))
    answer = app.client.get(
        "/events",
        params={"start_date": "2031-03-01", "end_date": "2031-03-31"},
        headers=bob.headers,
    )
    assert answer.status_code == 200, answer.text[:500]
    [where] = [e for e in answer.json()["events"] if e["google_event_id"] == where_id]
    assert where["working_location"]["custom_location"]["label"] == expected(WORST)
