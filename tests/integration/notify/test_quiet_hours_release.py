"""Two reminders held by quiet hours do not both go out when they end (JK4).

Ann (Berlin) has quiet hours until 07:00 and wants reminders 60 and 30 minutes ahead; her
stand-up is at 07:10, so both fall due in her quiet hours and are held until 07:00. Only
the last is useful then, as after downtime: she gets one email, the 30-minute reminder,
and the 60-minute one is skipped as superseded. Ben (New York), with the same lead times
and no quiet hours, gets both, at 06:10 and 06:40 his time. All set through the API;
both databases.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from calsync.notify.deliveries import deliver_due
from calsync.store.tables import NotificationDelivery
from calsync.store.tables import User as UserRow
from tests.integration.events.conftest import EventsApp, User, any_app
from tests.integration.notify.conftest import SmtpServer, dispatcher_for, smtp_server

pytestmark = pytest.mark.integration

__all__ = ["any_app", "smtp_server"]  # the fixtures, used by name


def stand_up(app: EventsApp, user: User, zone: str, quiet: bool) -> datetime:
    """`user` in `zone`, reminded 60 and 30 minutes ahead (quiet until 07:00 if
    `quiet`), with a stand-up tomorrow at 07:10 local; returns its start."""
    with app.services.sessions.begin() as session:
        session.execute(sa.update(UserRow).where(UserRow.id == user.id).values(timezone=zone))
    body: dict[str, object] = {"reminder_minutes": [60, 30]}
    if quiet:
        body["quiet_hours"] = {"start": "22:00", "end": "07:00"}
    answer = app.client.put("/me/preferences", headers=user.headers, json=body)
    assert answer.status_code == 200, answer.text
    made = app.create(
        user,
        {
            "title": "Stand-up",
            "start_time": "2031-03-04T07:10:00",
            "end_time": "2031-03-04T07:25:00",
            "timezone": zone,
        },
    )
    return datetime.fromisoformat(made["start_time"])


def test_reminders_held_by_quiet_hours_send_only_the_last_when_they_end(
    any_app: EventsApp, smtp_server: SmtpServer
) -> None:
    app = any_app
    ann, ben = app.connect("ann@example.com"), app.connect("ben@example.com")
    anns = stand_up(app, ann, "Europe/Berlin", quiet=True)
    bens = stand_up(app, ben, "America/New_York", quiet=False)
    dispatcher = dispatcher_for(smtp=smtp_server)
    # When the sender runs at each reminder's time and when Ann's quiet hours end
    moments = [anns - timedelta(minutes=60), anns - timedelta(minutes=30)]
    moments += [anns - timedelta(minutes=10)]  # 07:00 in Berlin
    moments += [bens - timedelta(minutes=60), bens - timedelta(minutes=30)]
    for moment in sorted(moments):
        deliver_due(app.services.sessions, dispatcher, now=moment)
    # Then Ann got one email, the last reminder, and Ben both
    with app.services.sessions() as session:
        rows = session.scalars(sa.select(NotificationDelivery)).all()
        outcomes = sorted(
            (r.user_id == ann.id, r.lead_minutes, r.status, r.reason or "") for r in rows
        )
    assert outcomes == [
        (False, 30, "sent", ""),
        (False, 60, "sent", ""),
        (True, 30, "sent", ""),
        (True, 60, "skipped", "superseded by a later reminder of the same occurrence"),
    ]
    assert [len(smtp_server.mailbox.to(u.email)) for u in (ann, ben)] == [1, 2]
