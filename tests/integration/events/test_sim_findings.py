"""Bugs the multi-tenant simulation (tests/sim, docs/faults.md) found, reproduced
deterministically: each test names the seed that showed it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calsync.emulator.testing import build_calendar_service
from calsync.events import writes
from tests.integration.events.conftest import EventsApp, User, committed_first

pytestmark = pytest.mark.integration


def test_taking_the_push_lease_does_not_make_a_local_edit_look_newer(any_app: EventsApp) -> None:
    """Seed 632973422 (embedded): a description written on Google after the user's own
    edit was overwritten by the older local one. The push lease is taken with an UPDATE
    of the event row, which also moved ``updated_at`` - the time `last_updated_wins`
    reads as "last edited locally" - to the moment of the push."""
    app = any_app
    app.clock.now = datetime.now(UTC) - timedelta(seconds=30)  # the emulator's time, 30 s ago
    alice = app.connect("alice@example.com")
    created = app.create(alice, {"title": "plan", "start_time": "2031-03-11T17:00:00Z",
                                 "end_time": "2031-03-11T17:45:00Z"})  # fmt: skip
    app.push_all()
    # Given the user edits the description (30 s ago) and then another client on Google
    answer = app.put(alice, created["id"], {"description": "the user's, older"})
    assert answer.status_code == 200, answer.text
    app.remote(alice).patch(
        calendarId=alice.primary,
        eventId=created["google_event_id"],
        body={"description": "Google's, newer"},
    ).execute()
    # When the user's edit is pushed (412, merged under last_updated_wins)
    app.push_all()
    # Then the later write wins on both sides
    on_google = app.google_event(alice, created["google_event_id"])
    assert on_google["description"] == "Google's, newer"
    assert app.get(alice, created["id"])["description"] == "Google's, newer"


def test_an_exception_orphaned_by_a_series_move_is_shown_as_google_shows_it(
    any_app: EventsApp,
) -> None:
    """Seeds 1286449810 and 691953531 (production): after a series moved on Google, an
    instance that had been moved before it was still in calsync's expanded list. Fixed by
    decision JH1: the pull stores an exception its series no longer has as cancelled, as
    Google shows it (was a strict xfail until then)."""
    app = any_app
    alice = app.connect("alice@example.com")
    google = app.remote(alice)
    series = google.insert(
        calendarId=alice.primary,
        body={
            "summary": "1:1",
            "start": {"dateTime": "2031-03-15T14:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2031-03-15T15:00:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        },
    ).execute()
    # Given its first instance moved an hour earlier, then the whole series two hours
    google.patch(
        calendarId=alice.primary,
        eventId=f"{series['id']}_20310315T140000Z",
        body={
            "start": {"dateTime": "2031-03-15T13:00:00Z"},
            "end": {"dateTime": "2031-03-15T14:00:00Z"},
        },
    ).execute()
    google.patch(
        calendarId=alice.primary,
        eventId=series["id"],
        body={
            "start": {"dateTime": "2031-03-15T12:00:00Z"},
            "end": {"dateTime": "2031-03-15T13:00:00Z"},
        },
    ).execute()
    # When calsync pulls
    app.pull(alice)
    # Then its expanded list holds the instances Google's does
    window = {"timeMin": "2031-03-01T00:00:00Z", "timeMax": "2031-04-30T00:00:00Z"}
    on_google = google.list(calendarId=alice.primary, singleEvents=True, **window).execute()
    listed = app.client.get(
        "/events",
        headers=alice.headers,
        params={"start_date": "2031-03-01", "end_date": "2031-04-29", "expand": "true"},
    ).json()["events"]
    assert sorted(e["google_event_id"] for e in listed) == sorted(
        i["id"] for i in on_google["items"]
    )


def test_deleting_a_changed_instance_by_its_own_id_cancels_that_instance(
    any_app: EventsApp,
) -> None:
    """Seeds 847800167 (embedded) and 691953531 (production): a changed instance deleted
    through the id ``GET /events`` lists it under came back in calsync's expanded list
    while Google had cancelled it, and a later write to the instance answered 500 (a
    second row for the same Google id). The delete tombstoned the exception's row like
    a whole event's instead of cancelling the instance."""
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(
        alice,
        {"title": "weekly", "start_time": "2031-03-04", "end_time": "2031-03-05",
         "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]},
    )  # fmt: skip
    instance = f"{series['id']}_20310311"
    assert app.put(alice, instance, {"title": "moved"}).status_code == 200
    app.push_all()
    listed = app.client.get("/events", headers=alice.headers).json()["events"]
    (changed,) = [e for e in listed if e["series_id"] is None and e["original_start_time"]]
    # When the changed instance is deleted by the id the plain list gives it
    deleted = app.client.delete(f"/events/{changed['id']}", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text
    app.push_all()
    app.pull(alice)
    # Then the instance is cancelled on both sides, and writing it again is a 404
    query = {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true"}
    shown = app.client.get("/events", headers=alice.headers, params=query).json()["events"]
    assert [e["start_time"] for e in shown] == ["2031-03-04", "2031-03-18"]
    instances = (
        app.remote(alice)
        .instances(calendarId=alice.primary, eventId=series["google_event_id"])
        .execute()["items"]
    )
    assert [i["start"]["date"] for i in instances] == ["2031-03-04", "2031-03-18"]
    again = app.client.delete(f"/events/{instance}", headers=alice.headers)
    assert again.status_code == 404, again.text


def test_a_new_exception_does_not_overwrite_a_later_google_change_of_the_instance(
    any_app: EventsApp,
) -> None:
    """Seed 1361037896 (production): an instance retitled through the API and, a moment
    later, moved on Google by another client ended at its old time on Google."""
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(
        alice,
        {"title": "weekly", "start_time": "2031-04-01T11:00:00Z",
         "end_time": "2031-04-01T12:30:00Z", "timezone": "UTC",
         "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]},
    )  # fmt: skip
    app.push_all()
    instance = f"{series['id']}_20310401T110000Z"
    google_instance = f"{series['google_event_id']}_20310401T110000Z"
    # Given the user retitles the instance, and before the push another client moves it
    assert app.put(alice, instance, {"title": "retitled"}).status_code == 200
    app.remote(alice).patch(
        calendarId=alice.primary,
        eventId=google_instance,
        body={"start": {"dateTime": "2031-04-01T10:00:00Z"},
              "end": {"dateTime": "2031-04-01T11:30:00Z"}},
    ).execute()  # fmt: skip
    # When the exception is pushed
    app.push_all()
    # Then both changes hold: the title from the API, the time from Google
    on_google = app.google_event(alice, google_instance)
    assert on_google["summary"] == "retitled"
    assert on_google["start"]["dateTime"] == "2031-04-01T10:00:00Z"


def test_a_pull_before_a_new_exceptions_push_keeps_another_clients_move_of_it(
    any_app: EventsApp,
) -> None:
    """Seed 20261206 (production, u11): the user changed one instance's description
    through the API; 2 s later an editor moved that instance on Google; calsync pulled
    the editor's exception before pushing its own, and merged it as if Google's copy
    were calsync's own lost write (the row had no etag), so the local (unchanged) times
    won and the push put the instance back at its old time. The base of that merge is
    the instance as the series generated it, as for the push's own first read (E23).
    Two users, each with an editor writing to their calendar, as in the simulation."""
    app = any_app
    editor = _editor(app, "sim-editor@example.com")
    users = (app.connect("alice@example.com"), app.connect("bob@example.com"))
    for user, day in zip(users, ("26", "27"), strict=True):
        app.control.share(user.primary, "sim-editor@example.com", "writer")
        series = app.create(
            user,
            {"title": "planning", "start_time": f"2031-03-{day}T16:00:00-04:00",
             "end_time": f"2031-03-{day}T16:30:00-04:00", "timezone": "America/New_York",
             "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"]},
        )  # fmt: skip
        app.push_all()
        app.pull(user)  # calsync has pulled the series: the next pull is incremental
        instance = f"{series['id']}_203103{day}T200000Z"
        google_instance = f"{series['google_event_id']}_203103{day}T200000Z"
        # Given the user changes the instance's description through calsync
        edited = app.put(user, instance, {"description": "the user's"}, scope="this")
        assert edited.status_code == 200, edited.text
        # and then the editor moves the same instance on Google
        editor.patch(
            calendarId=user.primary,
            eventId=google_instance,
            body={"start": {"dateTime": f"2031-03-{day}T23:00:00Z"},
                  "end": {"dateTime": f"2031-03-{day}T23:30:00Z"}},
        ).execute()  # fmt: skip
        # When calsync pulls the editor's exception before it pushes its own
        app.pull(user)
        app.push_all()
        # Then both writes hold on Google and in calsync, and nothing is left to push
        on_google = app.google_event(user, google_instance)
        assert on_google["description"] == "the user's"
        assert _instant(on_google["start"]["dateTime"]) == _instant(f"2031-03-{day}T23:00:00Z")
        listed = app.client.get("/events", headers=user.headers).json()["events"]
        (exception,) = [e for e in listed if e["google_event_id"] == google_instance]
        assert exception["description"] == "the user's"
        assert _instant(exception["start_time"]) == _instant(f"2031-03-{day}T23:00:00Z")
        assert exception["sync_state"] == "synced"


def _editor(app: EventsApp, email: str) -> Any:
    """Another Google user's client (a writer on the calendars shared with them)."""
    app.control.create_user(email)
    tokens = app.control.issue_tokens(email)
    service = build_calendar_service(app.google.url, tokens["access_token"])
    app.remotes.append(service)
    return service.events()


def _shared_weekly_series(
    app: EventsApp, editor: str
) -> Iterator[tuple[User, dict[str, Any], str]]:
    """Alice and Bob, each with a weekly series of three "standup"s made through the API,
    pushed and pulled, on a primary calendar shared with `editor` as a writer: yields
    each user, their series (as the API answered) and the id suffix of its first
    instance."""
    users = (app.connect("alice@example.com"), app.connect("bob@example.com"))
    for user, day in zip(users, ("12", "13"), strict=True):
        app.control.share(user.primary, editor, "writer")
        series = app.create(
            user,
            {"title": "standup", "start_time": f"2031-04-{day}T09:00:00Z",
             "end_time": f"2031-04-{day}T09:30:00Z", "timezone": "UTC",
             "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]},
        )  # fmt: skip
        app.push_all()
        app.pull(user)
        yield user, series, f"_203104{day}T090000Z"


def test_an_instance_edited_to_its_own_values_is_an_exception_on_google_too(
    any_app: EventsApp,
) -> None:
    """Seed 1449527753 (embedded): ``PUT ...?scope=this`` with the values the instance
    already had made calsync list an exception Google never got. Its first push read the
    instance and merged (E23), found nothing to change and marked it ``synced`` unsent;
    Google, where only a write to an instance makes an exception, listed no exception.
    Two users, so the write of one cannot stand in for the other's (decision C1)."""
    app = any_app
    users = [app.connect("alice@example.com"), app.connect("bob@example.com")]
    for user, hour in zip(users, ("09", "15"), strict=True):
        series = app.create(
            user,
            {"title": "standup", "start_time": f"2031-03-03T{hour}:00:00Z",
             "end_time": f"2031-03-03T{hour}:30:00Z", "timezone": "UTC",
             "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]},
        )  # fmt: skip
        app.push_all()
        # Given the user writes the second instance with the values it already has
        instance = f"{series['id']}_20310304T{hour}0000Z"
        same = {"title": "standup", "start_time": f"2031-03-04T{hour}:00:00Z",
                "end_time": f"2031-03-04T{hour}:30:00Z"}  # fmt: skip
        answer = app.put(user, instance, same, scope="this")
        assert answer.status_code == 200, answer.text
        # When it is pushed
        app.push_all()
        # Then Google lists the exception calsync lists, and nothing is left to push
        on_google = app.remote(user).list(calendarId=user.primary, singleEvents=False).execute()
        google_ids = sorted(e["id"] for e in on_google["items"])
        listed = app.client.get("/events", headers=user.headers).json()["events"]
        assert sorted(e["google_event_id"] for e in listed) == google_ids
        assert google_ids == sorted(
            [series["google_event_id"], f"{series['google_event_id']}_20310304T{hour}0000Z"]
        )
        assert {e["sync_state"] for e in listed} == {"synced"}


def test_a_field_changed_on_both_sides_goes_to_the_later_updated_event(
    any_app: EventsApp,
) -> None:
    """Seed 20261206 (production), decision C2: another client moved an event on Google,
    the user moved it again before calsync had pulled that, then the other client changed
    the description. Google keeps one update time per event, so its times win the 412
    merge (its event was updated last); the user's move is not lost to a field-by-field
    order calsync cannot know. Without the later description change the user's move wins.
    Two users: each one's merge goes by their own event's times."""
    app = any_app
    app.clock.now = datetime.now(UTC) - timedelta(hours=1)  # the emulator's time, earlier
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    for user, described in ((alice, True), (bob, False)):
        created = app.create(user, {"title": "planning", "start_time": "2031-04-26",
                                    "end_time": "2031-04-27"})  # fmt: skip
        app.push_all()
        google_id = created["google_event_id"]
        google = app.remote(user)
        move = google.patch(
            calendarId=user.primary,
            eventId=google_id,
            body={"start": {"date": "2031-04-25"}, "end": {"date": "2031-04-26"}},
        ).execute()
        # Given the user moves it too, just after Google's move, before calsync pulled it
        app.clock.now = _instant(move["updated"]) + timedelta(milliseconds=1)
        moved = app.put(user, created["id"], {"start_time": "2031-04-27", "end_time": "2031-04-28"})
        assert moved.status_code == 200, moved.text
        if described:  # and Google's event is updated once more, after the user's edit
            described_at = google.patch(
                calendarId=user.primary, eventId=google_id, body={"description": "agenda"}
            ).execute()["updated"]
            assert _instant(described_at) > app.clock.now
        # When the user's move is pushed (412, merged under last_updated_wins)
        app.push_all()
        # Then the side whose event was updated last has the times, on both sides
        expected = "2031-04-25" if described else "2031-04-27"
        assert app.google_event(user, google_id)["start"]["date"] == expected
        assert app.get(user, created["id"])["start_time"] == expected


def _instant(rfc3339: str) -> datetime:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))


@pytest.mark.parametrize("merged_by", ["push", "pull"])
def test_an_all_day_move_survives_a_later_google_change_of_another_field(
    any_app: EventsApp, merged_by: str
) -> None:
    """Seed 1449527753 (embedded, in CI under load): the user moved an all-day series a
    day earlier through the API; before calsync pushed that, another client changed
    another field of it on Google, and the merge put the series back on its old dates,
    on both sides. Google holds no zone for a date, so calsync reads an all-day event
    in the calendar's zone while its own writes carry none: the merge took Google's
    unchanged dates for a change of the times and gave them to the later updated side
    (decision J1). Two users, one series and one single event, each merged by the push
    (412) and by a pull that comes first."""
    app = any_app
    app.clock.now = datetime.now(UTC) - timedelta(hours=1)  # Google's edit comes later
    editor = _editor(app, "sim-editor@example.com")
    users = (app.connect("alice@example.com"), app.connect("bob@example.com"))
    for user, rule in zip(users, (["RRULE:FREQ=WEEKLY;COUNT=2"], []), strict=True):
        app.control.share(user.primary, "sim-editor@example.com", "writer")
        created = app.create(user, {"title": "standup", "start_time": "2031-04-16",
                                    "end_time": "2031-04-17", "recurrence": rule})  # fmt: skip
        app.push_all()
        app.pull(user)  # calsync has pulled it: the next pull is incremental
        google_id = created["google_event_id"]
        # Given the user moves it a day earlier through calsync
        moved = app.put(user, created["id"], {"start_time": "2031-04-15", "end_time": "2031-04-16"})
        assert moved.status_code == 200, moved.text
        # and then, before calsync pushed the move, another client describes it on Google
        editor.patch(
            calendarId=user.primary, eventId=google_id, body={"description": "agenda"}
        ).execute()
        # When calsync merges the two: the push's 412, or a pull before the push
        if merged_by == "pull":
            app.pull(user)
        app.push_all()
        # Then both writes hold, on Google and in calsync
        on_google = app.google_event(user, google_id)
        assert (on_google["start"], on_google["end"]) == (
            {"date": "2031-04-15"},
            {"date": "2031-04-16"},
        )
        assert on_google["description"] == "agenda"
        shown = app.get(user, created["id"])
        assert (shown["start_time"], shown["end_time"]) == ("2031-04-15", "2031-04-16")
        assert (shown["description"], shown["sync_state"]) == ("agenda", "synced")


def test_a_new_exceptions_field_is_not_taken_by_a_later_change_of_its_series(
    any_app: EventsApp,
) -> None:
    """Seed 800578069 (embedded, 30 users, under load): the user changed one instance's
    description through the API; a second later an editor changed the description of
    the whole series on Google, before calsync had pushed the exception. On Google an
    exception's own value of a field is kept when its series changes (the emulator's
    events.update of a master "leaves exceptions be", which the ledger expects), but
    the push's first read (E23) saw the instance as the series generates it, took the
    series' change for a change of the instance updated later, and gave it the field:
    the acknowledged instance edit was lost (decision JB1). Two users, each with an
    editor."""
    app = any_app
    app.clock.now = datetime.now(UTC) - timedelta(hours=1)  # the editor's write comes later
    editor = _editor(app, "sim-editor@example.com")
    for user, series, suffix in _shared_weekly_series(app, "sim-editor@example.com"):
        # Given the user describes one instance through calsync
        edited = app.put(user, series["id"] + suffix, {"description": "mine"}, scope="this")
        assert edited.status_code == 200, edited.text
        # and then, before the push, an editor retitles and describes the series on Google
        editor.patch(
            calendarId=user.primary,
            eventId=series["google_event_id"],
            body={"summary": "planning", "description": "the series'"},
        ).execute()
        # When calsync pushes the exception
        app.push_all()
        # Then the instance keeps the user's description and takes the series' title
        on_google = app.google_event(user, series["google_event_id"] + suffix)
        assert (on_google["summary"], on_google["description"]) == ("planning", "mine")


def test_an_instance_edit_racing_the_pull_of_googles_exception_of_it_is_stored_on_it(
    any_app: EventsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Soak run, seed 1832044296 (production, under load): ``PUT ...?scope=this`` found no
    exception of the instance and inserted one, while a pull stored the exception an
    editor had made of the same instance on Google: the insert hit the unique Google id
    and the API answered 500. Now the write runs again, finds the pulled exception and
    edits it. The pull is forced in between the write's read and its insert, on both
    databases, for two users."""
    app = any_app
    editor = _editor(app, "sim-editor@example.com")
    for user, series, suffix in _shared_weekly_series(app, "sim-editor@example.com"):
        # Given an editor moves one instance on Google (an exception there)
        editor.patch(
            calendarId=user.primary,
            eventId=series["google_event_id"] + suffix,
            body={"location": "Room 9"},
        ).execute()

        # When the user describes that instance through calsync, and the pull of the
        # editor's exception commits after the write read the instance, before it inserts
        def pulled(user: Any = user) -> None:
            app.pull(user)

        ran = committed_first(monkeypatch, writes, "insert_exception", pulled, what="the pull")
        edited = app.put(user, series["id"] + suffix, {"description": "mine"}, scope="this")
        monkeypatch.undo()
        # Then the write is stored on the pulled exception: both changes kept, one row
        assert ran, "the pull ran between the write's read and its insert"
        assert edited.status_code == 200, edited.text
        shown = app.get(user, series["id"] + suffix)
        assert (shown["location"], shown["description"]) == ("Room 9", "mine")
        app.push_all()
        on_google = app.google_event(user, series["google_event_id"] + suffix)
        assert (on_google.get("location"), on_google.get("description")) == ("Room 9", "mine")
        listed = (
            app.remote(user)
            .list(calendarId=user.primary, singleEvents=True, q="standup")
            .execute()["items"]
        )
        assert len(listed) == 3, listed
