"""Titles as people really type and paste them reach everyone, by email and by webhook (JK1).

A team's organizer creates events through the API whose titles hold what the API accepts:
a line break (a pasted agenda), Unicode's own line and paragraph separators (pasted from
a word processor or a web page), right-to-left text with a bidi override, HTML, and a very
long title. Two colleagues are invited; each wants email and a signed webhook; the
organizer is reminded. Every delivery is sent once: each email's subject shows the title
on one line, its HTML escapes it, and each webhook carries the title exactly as stored.
Both databases.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import timedelta
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from calsync.notify.deliveries import deliver_due
from calsync.notify.outgoing_webhooks import verify_signature
from calsync.store.tables import NotificationDelivery
from calsync.store.tables import User as UserRow
from tests.integration.events.conftest import EventsApp, any_app
from tests.integration.notify.conftest import (
    Listen,
    SmtpServer,
    dispatcher_for,
    listen,
    receiving_http,
    smtp_server,
)

pytestmark = pytest.mark.integration

__all__ = ["any_app", "listen", "smtp_server"]  # the fixtures, used by name

#: Each title, and how a subject line shows it: each line break a space.
SHOWN = {
    "Standup\nRoom 4, bring the agenda": "Standup Room 4, bring the agenda",
    "Quarterly\r\nplanning": "Quarterly planning",
    "Offsite\u2028day two\u2029wrap-up": "Offsite day two wrap-up",
    "\u202eweiver ngised\u202c \u05e1\u05e7\u05d9\u05e8\u05d4": (
        "\u202eweiver ngised\u202c \u05e1\u05e7\u05d9\u05e8\u05d4"
    ),
    "<script>alert(1)</script> & <b>budget</b>": "<script>alert(1)</script> & <b>budget</b>",
    "Long " + "x" * 1000: "Long " + "x" * 1000,
}
TITLES = list(SHOWN)


def test_hostile_titles_reach_the_organizer_and_the_invited_by_email_and_webhook(
    any_app: EventsApp, smtp_server: SmtpServer, listen: Listen
) -> None:
    app = any_app
    tag = uuid.uuid4().hex[:6]
    ann, ben, cat = (app.connect(f"{n}-{tag}@example.com") for n in ("ann", "ben", "cat"))
    zones = {ann.id: "Europe/Berlin", ben.id: "America/New_York", cat.id: "Asia/Tokyo"}
    with app.services.sessions.begin() as session:
        for user_id, zone in zones.items():
            session.execute(sa.update(UserRow).where(UserRow.id == user_id).values(timezone=zone))
    receiver = listen()
    secrets = {}
    for user in (ann, ben, cat):
        answer = app.client.put(
            "/me/preferences",
            headers=user.headers,
            json={
                "channels": ["email", "webhook"],
                "webhook_url": f"https://rebind.test:{receiver.port}/hooks/{user.id}",
                "reminder_minutes": [30],
            },
        )
        assert answer.status_code == 200, answer.text
        secrets[str(user.id)] = answer.json()["webhook_secret"]
    # Given Ann invites Ben and Cat to an event for each title, tomorrow at an hour apart
    start = app.clock() + timedelta(days=1)
    for n, title in enumerate(TITLES):
        begins = start + timedelta(hours=n)
        app.create(
            ann,
            {
                "title": title,
                "start_time": begins.isoformat(),
                "end_time": (begins + timedelta(minutes=30)).isoformat(),
                "timezone": "Europe/Berlin",
                "attendees": [ben.email, cat.email],
            },
        )
    # When everything due is sent: the invitations now, the reminders a day later
    http = receiving_http(receiver, resolver=lambda host, port: [receiver.host])
    dispatcher = dispatcher_for(smtp=smtp_server, http=http, box=app.services.secrets)
    deliver_due(app.services.sessions, dispatcher, now=app.clock())
    for n in range(len(TITLES)):
        moment = start + timedelta(hours=n, minutes=-29)
        deliver_due(app.services.sessions, dispatcher, now=moment)
    # Then every delivery was sent, once
    with app.services.sessions() as session:
        rows = session.scalars(sa.select(NotificationDelivery)).all()
        outcomes = sorted((r.kind, r.status, r.reason or "") for r in rows)
    assert outcomes == sorted(
        [("change", "sent", "")] * (len(TITLES) * 2 * 2)
        + [("reminder", "sent", "")] * (len(TITLES) * 2)
    )
    mails = smtp_server.mailbox.messages
    assert len(mails) == len(TITLES) * 3
    for user, kind in ((ann, "Reminder"), (ben, "Invitation"), (cat, "Invitation")):
        # (a subject folded right after "Subject:" parses with the fold's space first)
        subjects = [str(m["Subject"]).strip() for m in smtp_server.mailbox.to(user.email)]
        assert sorted(_title_of(s, SHOWN.values()) for s in subjects) == sorted(
            f"{kind}: {shown}" for shown in SHOWN.values()
        ), subjects
    for mail in mails:
        assert "<script>" not in _html_of(mail)
    # And each webhook carries the title exactly, signed with its owner's secret
    assert len(receiver.requests) == len(TITLES) * 3
    for request in receiver.requests:
        body = json.loads(request.body)
        assert body["event"]["title"] in TITLES
        assert verify_signature(
            secrets[body["user_id"]],
            timestamp=request.headers["calsync-timestamp"],
            signature=request.headers["calsync-signature"],
            body=request.body,
            now=app.clock(),
            tolerance_seconds=3 * 86400,
        )


def _html_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _title_of(subject: str, shown: Iterable[str]) -> str:
    """The part of `subject` before the event's time, when it is one of the titles."""
    for title in shown:
        head = subject.split(": ", 1)[0]
        if subject.startswith(f"{head}: {title}, "):
            return f"{head}: {title}"
    return subject
