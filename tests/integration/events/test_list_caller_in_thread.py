"""``GET /events`` reads its caller's account in the route's own worker thread (decision
HU1): one thread call a list, where authentication's read had a thread call of its own;
the token is still verified in full (signature, expiry, issuer, audience) and the
account read on every request, so a bad, expired or disabled caller is refused (401,
audited) and each user sees only their own events. Both databases, several users.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio.to_thread
import pytest
import sqlalchemy as sa

from calsync.store.tables import AuditEvent
from calsync.store.tables import User as UserRow
from calsync.web.auth.tokens import issue_token
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

MARCH = {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true"}


@pytest.fixture
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions the app runs in worker threads (`run_in_threadpool`
    goes through `anyio.to_thread.run_sync`), in order; each still runs."""
    calls: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(getattr(func, "func", func), "__qualname__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return calls


def own_events(app: EventsApp, count: int) -> list[tuple[User, set[str]]]:
    """`count` users, each with a daily series of their own in March 2031."""
    made = []
    for n in range(count):
        user = app.connect(f"hop{n}-{uuid.uuid4().hex[:6]}@example.com")
        created = app.create(
            user,
            {
                "title": f"user {n}",
                "start_time": f"2031-03-0{n + 2}T10:00:00Z",
                "end_time": f"2031-03-0{n + 2}T11:00:00Z",
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"],
            },
        )
        made.append((user, {created["id"]}))
    return made


def test_a_list_is_one_thread_call_and_each_user_sees_their_own(
    any_app: EventsApp, thread_calls: list[str]
) -> None:
    # Given three users with events of their own
    people = own_events(any_app, 3)

    for user, series in people:
        # When each lists March
        thread_calls.clear()
        answer = any_app.client.get("/events", params=MARCH, headers=user.headers)

        # Then they get their own two instances, and nobody else's
        assert answer.status_code == 200, answer.text
        events = answer.json()["events"]
        assert len(events) == 2
        assert {e["series_id"] for e in events} == series
        # And the account's read and the page were one thread call (two before HU1:
        # authentication's read, then the route's)
        assert thread_calls == ["list_events.<locals>.run"]


def audited(app: EventsApp) -> dict[str, int]:
    """The refusals audited, by reason."""
    with app.services.sessions() as session:
        rows = session.execute(
            sa.select(AuditEvent.details, AuditEvent.count).where(
                AuditEvent.action == "auth_failed"
            )
        ).all()
    found: dict[str, int] = {}
    for details, count in rows:
        reason = (details or {}).get("reason", "")
        found[reason] = found.get(reason, 0) + count
    return found


def test_bad_expired_unknown_and_disabled_callers_are_refused(any_app: EventsApp) -> None:
    # Given a user with events, and tokens that must not list them
    [(alice, _)] = own_events(any_app, 1)
    jwt, now = any_app.services.jwt, any_app.services.clock()
    good = issue_token(jwt, subject=str(alice.id), email=alice.email, role="user", now=now)
    expired = issue_token(
        jwt, subject=str(alice.id), email=alice.email, role="user", now=now - timedelta(hours=3)
    )
    unknown = issue_token(jwt, subject=str(uuid.uuid4()), email="x@y.z", role="user", now=now)
    not_an_id = issue_token(jwt, subject="not-a-uuid", email="x@y.z", role="user", now=now)
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    refused = [forged, expired, unknown, not_an_id, "not.a.jwt"]

    # When each lists March, and then Alice herself once she is disabled
    answers = [
        any_app.client.get("/events", params=MARCH, headers={"Authorization": f"Bearer {t}"})
        for t in refused
    ]
    assert any_app.client.get("/events", params=MARCH, headers=alice.headers).status_code == 200
    with any_app.services.sessions.begin() as session:
        session.execute(sa.update(UserRow).where(UserRow.id == alice.id).values(status="disabled"))
    answers.append(any_app.client.get("/events", params=MARCH, headers=alice.headers))
    anonymous = any_app.client.get("/events", params=MARCH)

    # Then each is 401 as a refused token, with no events
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "unauthorized"
        assert answer.json()["error"]["message"] == "invalid or expired token"
        assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["message"] == "authentication required"
    # And every refusal is audited, the unknown and the disabled callers' alike
    reasons = audited(any_app)
    assert reasons["unknown or disabled user"] == 3, reasons
    assert reasons["token expired"] == 1, reasons
    assert sum(reasons.values()) == len(answers)
