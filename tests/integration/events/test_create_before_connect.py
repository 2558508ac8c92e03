"""A create sent right after the sign-in, before the worker listed the user's calendars
(decision JD2): 409 ``calendars_connecting`` that says to try again, not a 422 telling
a user who just signed in with calendar access to sign in with Google; nothing is
created, and once the calendars are listed the same request succeeds. A user without
Google access still gets the 422. Both databases, three users."""

from __future__ import annotations

from datetime import timedelta

import pytest

from calsync.domain.accounts import Role
from calsync.sync import calendar_list
from tests.google_users import connect_google_user
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

BODY = {
    "title": "kick-off",
    "start_time": "2031-03-10T09:00:00Z",
    "end_time": "2031-03-10T10:00:00Z",
}


def signed_in_not_listed(app: EventsApp, email: str) -> User:
    """A user whose sign-in stored tokens with calendar access and queued the connection,
    which no worker has run yet (so no calendar is listed)."""
    account, granted = connect_google_user(
        app.services, app.control, email, expires_at=app.clock() + timedelta(days=30)
    )
    token = app.token(account.id, email, Role.USER)
    return User(account.id, email, {"Authorization": f"Bearer {token}"}, granted)


def test_a_create_before_the_calendars_are_listed_says_to_retry(any_app: EventsApp) -> None:
    # Given ann, just signed in, whose calendars the worker has not listed yet; ben,
    # connected; and cid, a calsync user without Google
    ann = signed_in_not_listed(any_app, "ann@example.com")
    ben = any_app.connect("ben@example.com")
    cid = any_app.local_user("cid@example.com")
    # When each creates an event on their primary calendar
    early = any_app.client.post("/events", json=BODY, headers=ann.headers)
    bens = any_app.client.post("/events", json=BODY, headers=ben.headers)
    cids = any_app.client.post("/events", json=BODY, headers=cid.headers)
    # Then ann is told her calendars are being connected, and nothing was created
    assert early.status_code == 409, early.text
    assert early.json()["error"]["code"] == "calendars_connecting"
    assert "try again" in early.json()["error"]["message"]
    listed = any_app.client.get("/events", headers=ann.headers).json()["events"]
    assert listed == []
    # and ben's create is unaffected, and cid is still told to sign in with Google
    assert bens.status_code == 201, bens.text
    assert cids.status_code == 422
    assert cids.json()["error"]["details"][0]["field"] == "calendar_id"
    # And once the worker lists ann's calendars, the same request creates her event
    calendar_list.sync_calendar_list(any_app.services, ann.id)
    again = any_app.client.post("/events", json=BODY, headers=ann.headers)
    assert again.status_code == 201, again.text
    assert again.json()["calendar_id"] == str(any_app.calendar_id(ann, ann.email))
