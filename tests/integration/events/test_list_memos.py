"""The expanded list's memos (`calsync.web.list_cache`): series items and item bodies are
reused while the rows they come from are unchanged, answer byte for byte as a fresh
computation does, and never outlive a change of the rows (a rule, a title, a new
exception), whoever makes it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.datastructures import QueryParams

from calsync.store.row_cache import cache_of
from calsync.store.tables import Event as EventRow
from calsync.store.users import find_by_id
from calsync.web.event_output import event_json
from calsync.web.event_reads import ListQuery, list_bodies, list_views, parse_list_query
from calsync.web.json_body import json_bytes, list_body
from calsync.web.list_cache import memos_of
from calsync.web.paging import list_scope
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

MARCH = {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true", "limit": "200"}


def seed(app: EventsApp, user: User) -> dict[str, str]:
    """Singles, plain series of two categories, and a series with an edited instance."""
    ids: dict[str, str] = {}
    for day in (2, 11, 20):
        ids[f"single {day}"] = app.create(
            user,
            {
                "title": f"single {day}",
                "category": "work",
                "start_time": f"2031-03-{day:02d}T10:00:00Z",
                "end_time": f"2031-03-{day:02d}T11:00:00Z",
                "attendees": ["bob@example.com"],
            },
        )["id"]
    for title, category, rule in (
        ("daily", "work", "RRULE:FREQ=DAILY;COUNT=40"),
        ("weekly", "home", "RRULE:FREQ=WEEKLY;BYDAY=MO,TH"),
        ("edited", None, "RRULE:FREQ=WEEKLY"),
    ):
        ids[title] = app.create(
            user,
            {
                "title": title,
                "category": category,
                "start_time": "2031-02-27T08:00:00",
                "end_time": "2031-02-27T09:00:00",
                "timezone": "Europe/Berlin",
                "recurrence": [rule],
            },
        )["id"]
    ids["all-day"] = app.create(
        user,
        {
            "title": "all-day",
            "start_time": "2031-03-01",
            "end_time": "2031-03-02",
            "timezone": "Pacific/Auckland",
            "recurrence": ["RRULE:FREQ=WEEKLY", "EXDATE;VALUE=DATE:20310315"],
        },
    )["id"]
    edited = f"{ids['edited']}_20310306T070000Z"
    assert app.put(user, edited, {"title": "moved", "category": "work"}).status_code == 200
    return ids


def body(app: EventsApp, user: User, **params: str) -> bytes:
    response = app.client.get("/events", params=MARCH | params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.content


def query(app: EventsApp, user: User, **params: str) -> ListQuery:
    with app.services.sessions() as session:
        account = find_by_id(session, user.id)
    assert account is not None
    asked = MARCH | params
    # the scope the route binds its cursors to, so that next_cursor compares equal
    scope = list_scope("events", user.id, QueryParams(asked))
    return parse_list_query(asked, user_zone=account.timezone or "UTC", scope=scope)


def fresh(app: EventsApp, user: User, **params: str) -> bytes:
    """The answer computed without any memo or cached row (`list_views`, then JSON)."""
    asked = query(app, user, **params)
    with app.services.sessions() as session:
        memos, rows = memos_of(session), cache_of(session)
        assert memos is not None
        assert rows is not None
        memos.clear()
        rows.clear()
        views, cursor = list_views(session, user.id, asked)
        memos.clear()
        rows.clear()
    return json_bytes({"events": [event_json(v) for v in views], "next_cursor": cursor})


def titles(answer: bytes) -> list[str]:
    events: list[dict[str, Any]] = json.loads(answer)["events"]
    return [e["title"] for e in events]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"limit": "7"},
        {"category": "work"},
        {"category": "home", "limit": "3"},
        {"recurring": "true"},
    ],
)
def test_memoised_answers_equal_fresh_ones(app: EventsApp, params: dict[str, str]) -> None:
    # Given a month of singles, series and an exception, listed once to fill the memos
    alice = app.connect("alice@example.com")
    seed(app, alice)
    expected = fresh(app, alice, **params)
    assert body(app, alice, **params) == expected
    with app.services.sessions() as session:
        memos = memos_of(session)
        assert memos is not None
        assert len(memos.series) > 0
        assert len(memos.bodies) > 0
    # When the same page is listed again, from the memos
    again = body(app, alice, **params)
    # Then it is the fresh answer, byte for byte, also through list_bodies directly
    assert again == expected
    asked = query(app, alice, **params)
    with app.services.sessions() as session:
        bodies, cursor = list_bodies(session, alice.id, asked)
    assert list_body(bodies, cursor) == expected


def test_a_rule_changed_outside_calsync_is_expanded_again(app: EventsApp) -> None:
    # Given a listed month with a daily series of 40
    alice = app.connect("alice@example.com")
    ids = seed(app, alice)
    assert titles(body(app, alice)).count("daily") == 31
    # When SQL outside calsync cuts the series to 3 instances
    with app.services.sessions.begin() as session:
        session.execute(
            sa.update(EventRow)
            .where(EventRow.id == ids["daily"])
            .values(recurrence_rule="RRULE:FREQ=DAILY;COUNT=3")
        )
    # Then the list expands the new rule (Feb 27, 28 and March 1: one in March)
    assert titles(body(app, alice)).count("daily") == 1
    assert body(app, alice) == fresh(app, alice)


def test_a_new_exception_replaces_its_instance_at_once(app: EventsApp) -> None:
    # Given a listed month of a weekly series (its instances memoised)
    alice = app.connect("alice@example.com")
    ids = seed(app, alice)
    before = titles(body(app, alice))
    assert before.count("weekly") == 9
    # When one instance is edited and another cancelled (the master row is not written)
    instance = f"{ids['weekly']}_20310313T070000Z"
    assert app.put(alice, instance, {"title": "weekly moved"}).status_code == 200
    cancelled = f"{ids['weekly']}_20310320T070000Z"
    assert app.client.delete(f"/events/{cancelled}", headers=alice.headers).status_code == 204
    # Then the list shows the edit and leaves out the cancelled instance
    after = titles(body(app, alice))
    assert after.count("weekly") == 7
    assert after.count("weekly moved") == 1
    assert body(app, alice) == fresh(app, alice)


def test_a_title_changed_outside_calsync_shows_in_every_instance(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    ids = seed(app, alice)
    assert titles(body(app, alice)).count("daily") == 31
    with app.services.sessions.begin() as session:
        session.execute(
            sa.update(EventRow).where(EventRow.id == ids["daily"]).values(title="DAILY")
        )
    listed = titles(body(app, alice))
    assert listed.count("DAILY") == 31
    assert "daily" not in listed
