"""An installation upgraded across migration 0019 (decision IX), as a user meets it
(review SB1): calsync at 0018 with three users (two sharing a Google calendar, each
through a row of their own), series with an edited instance and a split, attendees,
reminders, the read model filled, pushed events and events still in the outbox, is
stopped, migrated to head and started again. Every user's listings (expanded and not)
and every event's page are what they were, another user's event is still 404, the
outbox entries are still pushed once, and the read model's triggers still record (a
create, an edit and a delete after the upgrade show in the expanded listing). On both
databases (on SQLite 0019 rebuilds ``events``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.config import Mode, Settings
from calsync.events import read_model
from calsync.store import migrate
from calsync.store.db import make_engine
from calsync.store.tables import OutboxEntry
from calsync.sync import calendar_list
from tests.conftest import FakeGoogle
from tests.integration.events import conftest as events_conftest
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = pytest.mark.integration

MEETING = {
    "title": "Planning",
    "start_time": "2031-03-04T09:00:00",
    "end_time": "2031-03-04T10:00:00",
    "timezone": "Europe/Berlin",
}
WINDOW = {"start_date": "2031-03-01", "end_date": "2031-05-31"}


@pytest.fixture(params=["embedded", "production"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Each mode's settings on an empty database (the shared PostgreSQL one is at head)."""
    found = Settings.embedded(tmp_path)
    if request.param == "production":
        found = dataclasses.replace(
            found,
            mode=Mode.PRODUCTION,
            database_url=request.getfixturevalue("empty_pg_url"),
            redis_url=request.getfixturevalue("redis_url"),
            run_emulator=False,
        )
    return found


def _at_0018(engine: sa.Engine) -> None:
    migrate.upgrade(engine, "0018")


def _listing(app: EventsApp, user: User, **extra: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    params: dict[str, str] = WINDOW | extra
    while True:
        response = app.client.get("/events", params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        events += body["events"]
        cursor = body.get("next_cursor")
        if not cursor:
            return events
        params = params | {"cursor": cursor}


def _seen(app: EventsApp, people: list[User]) -> dict[str, Any]:
    """What each user sees: both listings, and each stored event's own page."""
    seen: dict[str, Any] = {}
    for user in people:
        app.upkeep()
        plain = _listing(app, user)
        seen[user.email] = {
            "plain": plain,
            "expanded": _listing(app, user, expand="true"),
            "pages": {e["id"]: app.get(user, e["id"]) for e in plain},
        }
    return seen


def _fill(app: EventsApp) -> tuple[list[User], set[str], str]:
    """Three users' calendars, written as users write them; some events left unpushed.
    The users, the ids of the events still in the outbox, and Ann's single event's."""
    ann, ben, cy = (app.connect(f"{n}@example.com") for n in ("ann", "ben", "cy"))
    team = app.control.add_calendar(ann.email, "Team", access_role="owner")
    app.control.share(team["id"], ben.email, "writer")
    for user in (ann, ben):
        calendar_list.sync_calendar_list(app.services, user.id)
    anns_team, bens_team = app.calendar_id(ann, team["id"]), app.calendar_id(ben, team["id"])
    read_model.fill(app.services.sessions, app.clock())

    weekly = ["RRULE:FREQ=WEEKLY;COUNT=6"]
    guests = {"attendees": ["guest@example.com", "other@example.com"], "reminders": [10, 60]}
    single = app.create(ann, MEETING | guests)["id"]
    app.create(
        ann, MEETING | {"calendar_id": str(anns_team), "title": "Ann's", "recurrence": weekly}
    )
    series = app.create(ben, MEETING | {"calendar_id": str(bens_team), "recurrence": weekly})
    app.create(cy, MEETING | guests | {"title": "Cy's", "recurrence": weekly})
    instances = [e for e in _listing(app, ben, expand="true") if e["series_id"] == series["id"]]
    assert len(instances) == 6
    assert app.put(ben, instances[1]["id"], {"title": "moved"}).status_code == 200
    assert (
        app.put(ben, instances[3]["id"], {"title": "later"}, scope="following").status_code == 200
    )
    app.push_all()
    for user, calendar in ((ann, anns_team), (ben, bens_team)):
        app.pull(user, calendar)
    # written after the pushes: still in the outbox when the installation stops
    waiting = {
        app.create(
            ann,
            MEETING
            | {
                "title": "unpushed",
                "start_time": "2031-03-06T09:00:00",
                "end_time": "2031-03-06T10:00:00",
            },
        )["id"],
        app.create(cy, MEETING | guests | {"title": "cy unpushed"})["id"],
    }
    return [ann, ben, cy], waiting, single


def _pending_pushes(app: EventsApp) -> set[str]:
    with app.services.sessions() as session:
        pending = sa.select(OutboxEntry.event_id).where(OutboxEntry.status == "pending")
        return {str(e) for e in session.scalars(pending)}


def test_an_installation_upgraded_across_0019_keeps_what_each_user_sees(
    settings: Settings, fake_google: FakeGoogle, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(events_conftest, "upgrade", _at_0018)
        for app in running(settings, fake_google):
            people, waiting, single = _fill(app)
            before = _seen(app, people)
            assert waiting <= _pending_pushes(app)
            url = app.services.engine.url.render_as_string(hide_password=False)
    engine = make_engine(url)
    assert migrate.schema_state(engine) == "behind"
    migrate.upgrade(engine)  # `calsync migrate`, the processes stopped
    assert migrate.is_at_head(engine)
    engine.dispose()

    for app in running(settings, fake_google):
        ann, ben, cy = people
        assert _seen(app, people) == before
        for user, other in ((ann, ben), (ben, cy), (cy, ann)):
            for event_id in before[other.email]["pages"]:
                if event_id not in before[user.email]["pages"]:
                    answer = app.client.get(f"/events/{event_id}", headers=user.headers)
                    assert answer.status_code == 404, answer.text
        # the outbox entries written before the upgrade are pushed once after it
        assert waiting <= _pending_pushes(app)
        inserts = len(app.google_requests("POST", "/events"))
        app.push_all()
        assert len(app.google_requests("POST", "/events")) == inserts + len(waiting)
        assert not waiting & _pending_pushes(app)
        # the read model's triggers record a create, an edit and a delete
        made = app.create(
            ben, MEETING | {"title": "after", "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]}
        )
        assert app.put(ann, single, {"title": "renamed"}).status_code == 200
        gone = before[cy.email]["plain"][0]["id"]
        assert app.client.delete(f"/events/{gone}", headers=cy.headers).status_code in (200, 204)
        app.upkeep()
        bens = [e["title"] for e in _listing(app, ben, expand="true")]
        assert bens.count("after") == 3
        anns = {e["id"]: e["title"] for e in _listing(app, ann, expand="true")}
        assert anns[single] == "renamed"
        assert gone not in {e["id"] for e in _listing(app, cy)}
        assert made["id"] not in {e["id"] for e in _listing(app, ann)}
