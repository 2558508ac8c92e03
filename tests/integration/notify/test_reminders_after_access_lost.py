"""A reminder never reaches a user who lost access to the event's calendar (JK2).

The owner's team calendar is shared at Google with Ben (writer) and Cat (reader); an event
on it is in each one's copy of the calendar, so each is to be reminded. The owner then
takes Cat off the calendar at Google: her calendar list drops it, with her copies of its
events. When the reminders fall due, the owner and Ben are emailed and Cat is not: her
record says why. Both databases.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from calsync.notify.deliveries import deliver_due
from calsync.sync import calendar_list
from tests.integration.events.conftest import EventsApp, any_app
from tests.integration.notify.conftest import SmtpServer, dispatcher_for, smtp_server

pytestmark = pytest.mark.integration

__all__ = ["any_app", "smtp_server"]  # the fixtures, used by name


def test_a_user_taken_off_a_shared_calendar_is_not_reminded_of_its_events(
    any_app: EventsApp, smtp_server: SmtpServer
) -> None:
    app = any_app
    owner, ben, cat = (app.connect(f"{n}@example.com") for n in ("owner", "ben", "cat"))
    team = app.control.add_calendar(owner.email, "Team")
    app.control.share(team["id"], ben.email, "writer")
    app.control.share(team["id"], cat.email, "reader")
    for user in (owner, ben, cat):
        calendar_list.sync_calendar_list(app.services, user.id)
    # Given an event on the team calendar in three hours, in everyone's copy of it
    start = app.clock() + timedelta(hours=3)
    app.remote(owner).insert(
        calendarId=team["id"],
        body={
            "summary": "Salary review",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        },
    ).execute()
    for user in (owner, ben, cat):
        app.pull(user, app.calendar_id(user, team["id"]))
        notices = app.client.get("/me/notices", headers=user.headers).json()["notices"]
        assert [(n["kind"], n["status"]) for n in notices] == [("reminder", "pending")]
    # When the owner takes Cat off the calendar at Google, and her calendar list is synced
    app.control.share(team["id"], cat.email, "none")
    removed = calendar_list.sync_calendar_list(app.services, cat.id).removed
    assert len(removed) == 1
    # Then at the reminders' time the owner and Ben are emailed, and Cat is not
    sent = deliver_due(app.services.sessions, dispatcher_for(smtp=smtp_server), now=start)
    assert (sent.sent, sent.skipped) == (2, 1)
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp_server.mailbox.messages) == [
        ben.email,
        owner.email,
    ]
    [record] = app.client.get("/me/notices", headers=cat.headers).json()["notices"]
    assert (record["status"], record["reason"]) == (
        "skipped",
        "the event is no longer in the user's calendars",
    )
