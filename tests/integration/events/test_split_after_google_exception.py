"""A this-and-following split made before calsync pulled another client's change of a
later instance (decision JD5, left): Google no longer lists that changed instance (its
original start is past the old series' new end), calsync does, beside the new series'
instance of the same day. Two users: bob pulls before he splits (listed the same on both
sides), alice does not (a ghost instance). Both databases."""

from __future__ import annotations

from typing import Any

import pytest

from calsync.sync import calendar_list
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

WEEKLY = {
    "title": "Review",
    "start_time": "2031-01-06T09:00:00",
    "end_time": "2031-01-06T10:00:00",
    "timezone": "Europe/Berlin",
    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=6"],
}


def shown(app: EventsApp, user: User) -> list[tuple[str, str]]:
    query = {"start_date": "2031-01-01", "end_date": "2031-03-31", "expand": "true"}
    response = app.client.get("/events", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    return [(e["start_time"], e["title"]) for e in response.json()["events"]]


def on_google(app: EventsApp, user: User) -> list[tuple[str, str]]:
    listed = app.remote(user).list(calendarId=user.primary, singleEvents=True).execute()["items"]
    return sorted((e["start"]["dateTime"], e["summary"]) for e in listed)


def change_fifth_at_google(app: EventsApp, user: User, series: dict[str, Any]) -> None:
    google_id = app.get(user, series["id"])["google_event_id"]
    events = app.remote(user)
    fifth = events.instances(calendarId=user.primary, eventId=google_id).execute()["items"][4]
    events.patch(
        calendarId=user.primary, eventId=fifth["id"], body={"summary": "by Google"}
    ).execute()


def test_an_instance_changed_at_google_before_a_split_is_listed_as_google_lists_it(
    any_app: EventsApp,
) -> None:
    # Given alice's and bob's weekly series on Google, whose fifth instance another client
    # renamed there; bob's calsync pulled that change, alice's not yet
    alice = any_app.connect("alice@example.com")
    bob = any_app.connect("bob@example.com")
    made = {user.email: any_app.create(user, WEEKLY) for user in (alice, bob)}
    any_app.push_all()
    for user in (alice, bob):
        change_fifth_at_google(any_app, user, made[user.email])
    any_app.pull(bob)
    # When each splits the series at its third instance (2031-01-20, 08:00 UTC)
    for user in (alice, bob):
        third = f"{made[user.email]['id']}_20310120T080000Z"
        response = any_app.put(user, third, {"title": "Review v2"}, scope="following")
        assert response.status_code == 200, response.text
    any_app.push_all()
    for user in (alice, bob):
        any_app.pull(user)
    # Then each lists what Google lists: two of the old series, four of the new one
    for user in (bob, alice):
        here = shown(any_app, user)
        assert [title for _, title in here] == ["Review"] * 2 + ["Review v2"] * 4, user.email
        assert sorted(here) == on_google(any_app, user), user.email


def test_a_series_cut_short_at_google_leaves_no_ghost_of_a_later_exception(
    any_app: EventsApp,
) -> None:
    # Given alice's and bob's weekly series whose fifth instance another client renamed
    # at Google, and calsync pulled that change
    alice = any_app.connect("alice@example.com")
    bob = any_app.connect("bob@example.com")
    made = {user.email: any_app.create(user, WEEKLY) for user in (alice, bob)}
    any_app.push_all()
    for user in (alice, bob):
        change_fifth_at_google(any_app, user, made[user.email])
        any_app.pull(user)
    # When another client cuts alice's series short at Google, before its third instance
    google_id = any_app.get(alice, made[alice.email]["id"])["google_event_id"]
    any_app.remote(alice).patch(
        calendarId=alice.primary,
        eventId=google_id,
        body={"recurrence": ["RRULE:FREQ=WEEKLY;UNTIL=20310120T075959Z"]},
    ).execute()
    for user in (alice, bob):
        any_app.pull(user)
    # Then alice lists the two instances Google lists, bob all six with the renamed one
    assert (
        shown(any_app, alice)
        == on_google(any_app, alice)
        == [
            ("2031-01-06T09:00:00+01:00", "Review"),
            ("2031-01-13T09:00:00+01:00", "Review"),
        ]
    )
    assert sorted(shown(any_app, bob)) == on_google(any_app, bob)
    assert [title for _, title in shown(any_app, bob)].count("by Google") == 1


def test_a_series_extended_again_at_google_lists_its_exception_again(any_app: EventsApp) -> None:
    """Decision JJ2 (JH4 before): an exception stored cancelled as stray when its series
    was cut short comes back when the series is extended again, as Google lists it; a
    cancelled one stays cancelled. Three clients' changes in a row, two users."""
    # Given alice's weekly series, which bob may read, whose fifth instance another
    # client renamed at Google, and both calsyncs pulled that change
    alice = any_app.connect("alice@example.com")
    bob = any_app.connect("bob@example.com")
    any_app.control.share(alice.primary, bob.email, "reader")
    calendar_list.sync_calendar_list(any_app.services, bob.id)
    bobs = any_app.calendar_id(bob, alice.primary)
    made = any_app.create(alice, WEEKLY)
    any_app.push_all()
    change_fifth_at_google(any_app, alice, made)
    # (and cancelled its sixth there, which must stay cancelled)
    google_id = any_app.get(alice, made["id"])["google_event_id"]
    events = any_app.remote(alice)
    sixth = events.instances(calendarId=alice.primary, eventId=google_id).execute()["items"][5]
    events.delete(calendarId=alice.primary, eventId=sixth["id"]).execute()
    readers = ((alice, alice.calendar_id), (bob, bobs))
    for user, calendar in readers:
        any_app.pull(user, calendar)
    # and another client cut the series short at Google, before its third instance
    cut = {"recurrence": ["RRULE:FREQ=WEEKLY;UNTIL=20310120T075959Z"]}
    events.patch(calendarId=alice.primary, eventId=google_id, body=cut).execute()
    for user, calendar in readers:
        any_app.pull(user, calendar)
    assert [title for _, title in shown(any_app, alice)] == ["Review"] * 2
    # When a third client extends it again at Google (six instances, as before)
    again = {"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=6"]}
    events.patch(calendarId=alice.primary, eventId=google_id, body=again).execute()
    for user, calendar in readers:
        any_app.pull(user, calendar)
    # Then both list what Google lists: the fifth renamed again, the sixth cancelled
    expected = on_google(any_app, alice)
    assert [title for _, title in expected] == ["Review"] * 4 + ["by Google"]
    assert shown(any_app, alice) == expected
    query = {"start_date": "2031-01-01", "end_date": "2031-03-31", "expand": "true"}
    listed = any_app.client.get(
        "/events", params=query | {"calendar_id": str(bobs)}, headers=bob.headers
    ).json()["events"]
    assert [(e["start_time"], e["title"]) for e in listed] == expected
