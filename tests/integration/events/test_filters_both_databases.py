"""Filters give the same answers on SQLite and PostgreSQL for the same events."""

from __future__ import annotations

from typing import Any

import pytest

from calsync.config import Settings
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = pytest.mark.integration

QUERIES: list[dict[str, str]] = [
    {},
    {"category": "work"},
    {"recurring": "true"},
    {"recurring": "false"},
    {"start_date": "2031-03-05", "end_date": "2031-03-10"},
    {"start_date": "2031-03-05T12:00:00Z", "end_date": "2031-03-09T00:00:00+01:00"},
    {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true"},
    {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true", "category": "work"},
    {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true", "recurring": "true"},
    {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true", "limit": "4"},
]


def seed(app: EventsApp, alice: User) -> None:
    for day in range(1, 15):
        app.create(
            alice,
            {
                "title": f"single {day}",
                "category": "work" if day % 2 else "home",
                "start_time": f"2031-03-{day:02d}T{day % 24:02d}:30:00Z",
                "end_time": f"2031-03-{day:02d}T{day % 24:02d}:45:00Z",
            },
        )
    app.create(alice, {"title": "trip", "start_time": "2031-03-06", "end_time": "2031-03-08"})
    app.create(
        alice,
        {
            "title": "series",
            "category": "work",
            "start_time": "2031-03-02T08:00:00",
            "end_time": "2031-03-02T09:00:00",
            "timezone": "America/New_York",
            "recurrence": [
                "RRULE:FREQ=DAILY;INTERVAL=3",
                "EXDATE;TZID=America/New_York:20310308T080000",
            ],
        },
    )


def answers(app: EventsApp, alice: User) -> list[list[tuple[Any, ...]]]:
    found = []
    for query in QUERIES:
        response = app.client.get("/events", params=query, headers=alice.headers)
        assert response.status_code == 200, (query, response.text)
        found.append(
            [(e["title"], e["start_time"], e["end_time"]) for e in response.json()["events"]]
        )
    return found


def test_the_same_filters_give_the_same_events_on_both_databases(
    embedded_settings: Settings, production_settings: Settings, fake_google: FakeGoogle
) -> None:
    results = []
    for settings, email in (
        (embedded_settings, "lite@example.com"),
        (production_settings, "pg@example.com"),
    ):
        for app in running(settings, fake_google):
            alice = app.connect(email)
            seed(app, alice)
            results.append(answers(app, alice))
    lite, pg = results
    assert lite == pg
    assert len(lite[0]) == 16
    assert all(title.startswith("single") or title == "series" for title, _, _ in lite[1])
