"""A Web Push fits the push services' 4096 bytes whatever the event's language (JK3).

Push services refuse an encrypted body over 4096 bytes (RFC 8030; Chrome's answers 413),
which leaves 3993 bytes of JSON under aes128gcm (RFC 8291: 103 bytes of header and tag).
A Japanese team's organizer makes, through the API, a meeting with a Japanese title and
agenda, and invites a colleague; both want pushes, from browsers registered through the
API, at a receiver that answers 413 past 4096 bytes like a push service. The invitation
and the reminder each arrive, decrypt, and name the event; the text is cut to fit, not
the push refused. Both databases.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from calsync.notify.deliveries import deliver_due
from calsync.store.tables import NotificationDelivery
from tests.integration.events.conftest import EventsApp, any_app
from tests.integration.notify.conftest import Listen, dispatcher_for, listen, receiving_http
from tests.integration.notify.test_outgoing_webhooks_and_web_push import Browser, b64, vapid_key

pytestmark = pytest.mark.integration

__all__ = ["any_app", "listen"]  # the fixtures, used by name

TITLE = "第3四半期の製品ロードマップ見直しと来期の採用計画についての定例会議" * 2
AGENDA = "議題は売上の振り返り、顧客からのフィードバック、次の四半期の優先順位。" * 20


def test_a_push_about_a_japanese_meeting_fits_the_push_services_limit(
    any_app: EventsApp, listen: Listen
) -> None:
    app = any_app
    tag = uuid.uuid4().hex[:6]
    aiko, ren = (app.connect(f"{n}-{tag}@example.jp") for n in ("aiko", "ren"))
    service = listen()
    service.max_body = 4096
    browsers = {}
    for user in (aiko, ren):
        prefs = app.client.put(
            "/me/preferences",
            headers=user.headers,
            json={"channels": ["push"], "reminder_minutes": [15]},
        )
        assert prefs.status_code == 200, prefs.text
        browser = Browser.new()
        answer = app.client.post(
            "/me/push-subscriptions",
            headers=user.headers,
            json={
                "endpoint": f"https://rebind.test:{service.port}/push/{user.id}",
                "expirationTime": None,
                "keys": {"p256dh": browser.p256dh, "auth": b64(browser.auth)},
            },
        )
        assert answer.status_code == 201, answer.text
        browsers[f"/push/{user.id}"] = browser
    # Given Aiko invites Ren to a meeting tomorrow with a Japanese title and agenda
    start = app.clock() + timedelta(days=1)
    app.create(
        aiko,
        {
            "title": TITLE,
            "description": AGENDA,
            "location": "本社 3階 大会議室",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=1)).isoformat(),
            "timezone": "Asia/Tokyo",
            "attendees": [ren.email],
        },
    )
    # When the invitation and, the next day, Aiko's reminder are pushed
    http = receiving_http(service, resolver=lambda host, port: [service.host])
    dispatcher = dispatcher_for(vapid_key=vapid_key(), http=http)
    deliver_due(app.services.sessions, dispatcher, now=app.clock())
    deliver_due(app.services.sessions, dispatcher, now=start - timedelta(minutes=15))
    # Then both were accepted, once each, and name the meeting
    with app.services.sessions() as session:
        rows = session.scalars(sa.select(NotificationDelivery)).all()
        outcomes = sorted((r.kind, r.status, r.reason) for r in rows)
    assert outcomes == [("change", "sent", None), ("reminder", "sent", None)]
    assert [len(r.body) <= 4096 for r in service.requests] == [True, True]
    for request in service.requests:
        message = json.loads(browsers[request.path].decrypt(request.body))
        assert message["event"]["title"] == TITLE
        assert message["title"].startswith(("Invitation: 第3四半期", "Reminder: 第3四半期"))
