"""Recurrence rules built to burn a core, through HTTP and through a pull, on both
databases, with several users.

A client's hostile rule is a 422 naming ``recurrence`` and changes nothing. A series
Google holds with such a rule is stored and shown as its master alone, with
``recurrence_error`` saying why, while the rest of its calendar syncs and expands; other
users see nothing of it. (That the work stays bounded is counted in
tests/unit/domain/test_rule_plans.py and tests/unit/emulator/test_recurrence_work.py;
tests/perf/bench_hostile_rules.py measures its CPU time.)
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

EVERY_SECOND = (
    "BYHOUR=" + ",".join(str(h) for h in range(24)),
    "BYMINUTE=" + ",".join(str(m) for m in range(60)),
    "BYSECOND=" + ",".join(str(s) for s in range(60)),
)
HOSTILE = [  # each built to cost dateutil seconds or minutes
    "RRULE:FREQ=YEARLY;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12;"
    f"BYMONTHDAY={','.join(str(d) for d in range(1, 32))};{';'.join(EVERY_SECOND)}",
    "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=23;BYMINUTE=59",
    "RRULE:FREQ=YEARLY;BYYEARDAY=366;BYMONTH=2",
    "RRULE:FREQ=SECONDLY;BYHOUR=23;BYMINUTE=59;BYSECOND=59",
]
GOOGLE_HOLDS = [rule for rule in HOSTILE if "FREQ=SECONDLY" not in rule]
"""The hostile rules Google stores: not the sub-daily ones (decision JO1)."""
BODY = {
    "title": "Standup",
    "start_time": "2031-03-04T09:00:00",
    "end_time": "2031-03-04T09:15:00",
    "timezone": "Europe/Berlin",
}


def refused_naming_recurrence(response: Any, rule: str) -> None:
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [d["field"] for d in details] == ["recurrence"]
    why = "work" if rule in GOOGLE_HOLDS else "not supported by Google Calendar"
    assert why in details[0]["message"]


def events_of(app: EventsApp, user: User, **params: str) -> list[dict[str, Any]]:
    response = app.client.get("/events", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


@pytest.mark.parametrize("rule", HOSTILE, ids=["every-value", "leap-monday", "day-366", "daily"])
def test_a_hostile_rule_is_a_422_on_create_and_update(any_app: EventsApp, rule: str) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    kept = app.create(alice, BODY | {"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]})
    # When alice creates a series with the rule, and puts it on her existing series
    created = app.client.post("/events", json=BODY | {"recurrence": [rule]}, headers=alice.headers)
    updated = app.put(alice, kept["id"], BODY | {"recurrence": [rule]})
    # Then both are refused naming the field, and nothing changed
    refused_naming_recurrence(created, rule)
    refused_naming_recurrence(updated, rule)
    assert app.get(alice, kept["id"])["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=3"]
    assert [e["id"] for e in events_of(app, alice)] == [kept["id"]]
    assert events_of(app, bob) == []
    assert app.client.get("/me", headers=bob.headers).status_code == 200


def test_a_pulled_hostile_series_is_a_master_with_its_error_and_the_rest_syncs(
    any_app: EventsApp,
) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    # Given Google holds, in alice's calendar, hostile series beside ordinary events
    google = app.remote(alice)
    for index, rule in enumerate(GOOGLE_HOLDS):
        google.insert(
            calendarId=alice.primary,
            body={
                "summary": f"hostile {index}",
                "start": {"dateTime": "2031-03-04T10:00:00", "timeZone": "Europe/Berlin"},
                "end": {"dateTime": "2031-03-04T10:30:00", "timeZone": "Europe/Berlin"},
                "recurrence": [rule],
            },
        ).execute()
    google.insert(
        calendarId=alice.primary,
        body={
            "summary": "weekly",
            "start": {"dateTime": "2031-03-05T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2031-03-05T09:30:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        },
    ).execute()
    google.insert(
        calendarId=alice.primary,
        body={
            "summary": "single",
            "start": {"dateTime": "2031-03-06T12:00:00Z"},
            "end": {"dateTime": "2031-03-06T13:00:00Z"},
        },
    ).execute()
    app.remote(bob).insert(
        calendarId=bob.primary,
        body={
            "summary": "bob's",
            "start": {"dateTime": "2031-03-06T12:00:00Z"},
            "end": {"dateTime": "2031-03-06T13:00:00Z"},
        },
    ).execute()

    # When both calendars are pulled
    app.pull(alice)
    app.pull(bob)

    # Then every event of alice's calendar is stored; the hostile series are masters that
    # say why they are not expanded, the others have no error
    listed = {e["title"]: e for e in events_of(app, alice)}
    assert sorted(listed) == sorted(
        [f"hostile {i}" for i in range(len(GOOGLE_HOLDS))] + ["weekly", "single"]
    )
    for index in range(len(GOOGLE_HOLDS)):
        shown = listed[f"hostile {index}"]
        assert shown["sync_state"] == "synced"
        assert shown["recurrence"] == [GOOGLE_HOLDS[index]]
        assert shown["recurrence_error"], shown
    assert listed["weekly"]["recurrence_error"] is None
    assert listed["single"]["recurrence_error"] is None
    # And an expanded listing shows the ordinary series' instances and no hostile one
    expanded = events_of(
        app, alice, start_date="2031-03-01", end_date="2031-04-01", expand="true", limit="100"
    )
    assert [e["title"] for e in expanded] == ["weekly", "single", "weekly", "weekly"]
    # And an instance id of a hostile series names nothing
    hostile_id = listed["hostile 0"]["id"]
    missing = app.client.get(f"/events/{hostile_id}_20310305T225959Z", headers=alice.headers)
    assert missing.status_code == 404
    # And bob's calendar synced as if nothing happened
    assert [e["title"] for e in events_of(app, bob)] == ["bob's"]
    assert app.client.get("/me", headers=bob.headers).status_code == 200
