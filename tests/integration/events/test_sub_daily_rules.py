"""Rules repeating more often than daily (FREQ=HOURLY, MINUTELY, SECONDLY), which RFC
5545 allows and Google refuses (decision JO1): a client writing one gets a 422 naming
``recurrence`` on create, patch and put, and nothing changes, locally or at Google, for
that user or another. On both databases."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

SUB_DAILY = ["RRULE:FREQ=HOURLY;INTERVAL=12", "RRULE:FREQ=MINUTELY;COUNT=10", "rrule:freq=secondly"]
BODY = {
    "title": "Medicine",
    "start_time": "2031-03-04T08:00:00",
    "end_time": "2031-03-04T08:15:00",
    "timezone": "Europe/Berlin",
}


def refused_as_sub_daily(response: Any) -> None:
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [d["field"] for d in details] == ["recurrence"]
    assert "not supported by Google Calendar" in details[0]["message"]


def titles_and_rules(app: EventsApp, user: User) -> list[tuple[str, list[str], str]]:
    response = app.client.get("/events", headers=user.headers)
    assert response.status_code == 200, response.text
    return [(e["title"], e["recurrence"], e["sync_state"]) for e in response.json()["events"]]


def at_google(app: EventsApp, user: User) -> list[tuple[str, list[str]]]:
    items = app.remote(user).list(calendarId=user.primary).execute()["items"]
    return sorted((i["summary"], i.get("recurrence", [])) for i in items)


@pytest.mark.parametrize("rule", SUB_DAILY, ids=["hourly", "minutely", "secondly"])
def test_a_sub_daily_rule_is_a_422_on_create_patch_and_put(any_app: EventsApp, rule: str) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    kept = app.create(alice, BODY | {"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]})
    app.create(bob, BODY | {"title": "Bob's", "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]})
    app.push_all()
    before = (titles_and_rules(app, alice), titles_and_rules(app, bob))
    assert before[0] == [("Medicine", ["RRULE:FREQ=WEEKLY;COUNT=3"], "synced")]
    # When alice creates a series with the rule, and patches and puts it on her series
    created = app.client.post("/events", json=BODY | {"recurrence": [rule]}, headers=alice.headers)
    patched = app.client.patch(
        f"/events/{kept['id']}", json={"recurrence": [rule]}, headers=alice.headers
    )
    put = app.put(alice, kept["id"], BODY | {"recurrence": [rule]})
    # Then each is refused naming the field, and nothing changed for alice or bob
    for response in (created, patched, put):
        refused_as_sub_daily(response)
    assert app.push_all() == []
    assert (titles_and_rules(app, alice), titles_and_rules(app, bob)) == before
    assert at_google(app, alice) == [("Medicine", ["RRULE:FREQ=WEEKLY;COUNT=3"])]
    assert at_google(app, bob) == [("Bob's", ["RRULE:FREQ=DAILY;COUNT=2"])]
    # And a daily rule is still taken, and reaches Google
    daily = app.client.patch(
        f"/events/{kept['id']}", json={"recurrence": ["RRULE:FREQ=DAILY"]}, headers=alice.headers
    )
    assert daily.status_code == 200, daily.text
    app.push_all()
    assert at_google(app, alice) == [("Medicine", ["RRULE:FREQ=DAILY"])]
