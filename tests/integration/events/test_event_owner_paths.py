"""Every path that writes ``events`` gives a row its calendar's owner as ``user_id``, the
invariant migration 0019's key (decision IX) rests on: the API's create in one's own and
in a shared calendar, an instance's edit (an exception), a split (``scope=following``),
the push's bookkeeping, and the pulls (full, then incremental) of a Google calendar two
users share, each through a calendar row of their own. On both databases; the check is
a join, so it would also catch a path that broke the invariant on a schema without the
key."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from calsync.store.tables import Calendar
from calsync.store.tables import Event as EventRow
from calsync.sync import calendar_list
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

MEETING = {
    "title": "Planning",
    "start_time": "2031-03-04T09:00:00",
    "end_time": "2031-03-04T10:00:00",
    "timezone": "Europe/Berlin",
}


def _expanded(app: EventsApp, user: User, calendar: str) -> list[dict[str, Any]]:
    query = {"start_date": "2031-03-01", "end_date": "2031-04-30", "expand": "true"}
    response = app.client.get(
        "/events", params=query | {"calendar_id": calendar}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _mismatched(app: EventsApp) -> list[Any]:
    with app.services.sessions() as session:
        return list(
            session.execute(
                sa.select(EventRow.id, EventRow.user_id, Calendar.user_id)
                .join(Calendar, Calendar.id == EventRow.calendar_id)
                .where(EventRow.user_id != Calendar.user_id)
            )
        )


def _owners_by_calendar(app: EventsApp) -> dict[Any, set[Any]]:
    with app.services.sessions() as session:
        rows = session.execute(sa.select(EventRow.calendar_id, EventRow.user_id))
        found: dict[Any, set[Any]] = {}
        for calendar_id, user_id in rows:
            found.setdefault(calendar_id, set()).add(user_id)
        return found


def test_every_writer_keeps_an_events_user_its_calendars_owner(any_app: EventsApp) -> None:
    app = any_app
    ann, ben = app.connect("ann@example.com"), app.connect("ben@example.com")
    team = app.control.add_calendar(ann.email, "Team", access_role="owner")
    app.control.share(team["id"], ben.email, "writer")
    for user in (ann, ben):
        calendar_list.sync_calendar_list(app.services, user.id)
    anns_team, bens_team = app.calendar_id(ann, team["id"]), app.calendar_id(ben, team["id"])

    # creates: in one's primary, in one's own row of the shared calendar, a series there
    app.create(ann, MEETING)
    app.create(ann, MEETING | {"calendar_id": str(anns_team), "title": "Ann's"})
    weekly = ["RRULE:FREQ=WEEKLY;COUNT=4"]
    app.create(ben, MEETING | {"calendar_id": str(bens_team), "recurrence": weekly})
    # an instance's edit and a split, by Ben in his row of the shared calendar
    instances = [e for e in _expanded(app, ben, str(bens_team)) if e["title"] == "Planning"]
    assert len(instances) == 4
    edited = app.put(ben, instances[1]["id"], {"title": "moved"})
    assert edited.status_code == 200, edited.text
    split = app.put(ben, instances[2]["id"], {"title": "later"}, scope="following")
    assert split.status_code == 200, split.text
    app.push_all()
    # pulls: each user's row of the shared calendar takes the other's events
    for user, calendar in ((ann, anns_team), (ben, bens_team), (ann, anns_team)):
        app.pull(user, calendar)
    app.pull(ann)
    app.pull(ben)

    assert _mismatched(app) == []
    owners = _owners_by_calendar(app)
    assert owners[anns_team] == {ann.id}
    assert owners[bens_team] == {ben.id}
    titles = {e["title"] for e in _expanded(app, ann, str(anns_team))}
    assert {"Ann's", "Planning", "moved", "later"} <= titles
