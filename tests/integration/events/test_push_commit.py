"""A push's lease is taken and given back in transactions that commit without waiting for
the WAL flush on PostgreSQL, and only those two (decision IM2); on both databases the
lease still lets one push at a time write an event, and each user's event reaches their
own calendar once.

A push of one create is four transactions: the lease taken, the attempt counted (which
must be durable before the insert is sent: `outbox.never_sent`), the success stored, the
lease given back. What could go wrong: the attempt or the success committed without the
flush, a setting left on the pooled connection for its next transaction, or the lease's
statement (now ``UPDATE ... RETURNING``) no longer saying whether it took the lease.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from calsync.store import outbox
from calsync.store.tables import Event as EventRow
from calsync.sync.write_back import PushStatus
from tests.integration.events.conftest import START, EventsApp
from tests.integration.sync.test_pull_commit import commit_modes

pytestmark = pytest.mark.integration


def lease_of(app: EventsApp, event_id: str) -> object:
    with app.services.sessions() as session:
        return session.scalar(
            sa.select(EventRow.push_lease_until).where(EventRow.id == uuid.UUID(event_id))
        )


def test_a_push_waits_for_the_flush_only_for_its_attempt_and_success(any_app: EventsApp) -> None:
    app = any_app
    postgresql = app.services.engine.dialect.name == "postgresql"
    # Given three users, each with an event created through the API, not yet pushed
    people = [app.connect(f"flush{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)]
    made = {}
    for n, user in enumerate(people):
        start = START + timedelta(days=2 + n, hours=9)
        made[user.email] = app.create(
            user,
            {
                "title": f"{user.email}'s meeting",
                "start_time": start.isoformat(),
                "end_time": (start + timedelta(minutes=30)).isoformat(),
            },
        )["id"]
    for user in people:
        # When the worker pushes the user's event
        with commit_modes(app.services.engine) as (committed, returned):
            result = app.push(made[user.email])
        # Then it is synced, and on PostgreSQL the lease's two transactions did not wait
        # for the flush, the attempt's and the success's did, and no connection went
        # back to the pool with the setting changed
        assert result.status is PushStatus.SYNCED, result
        if postgresql:
            assert committed == ["off", "on", "on", "off"], committed
            assert set(returned) == {"on"}, returned
        assert lease_of(app, made[user.email]) is None
    # And each user's calendar on Google holds their own event, once
    for user in people:
        listed = app.remote(user).list(calendarId=user.primary).execute()["items"]
        assert [e["summary"] for e in listed] == [f"{user.email}'s meeting"], listed


def test_a_held_lease_keeps_other_pushes_out_until_given_back(any_app: EventsApp) -> None:
    app = any_app
    ann, ben = (app.connect(f"{name}-{uuid.uuid4().hex[:6]}@example.com") for name in "ab")
    start = START + timedelta(days=4, hours=11)
    body = {
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=45)).isoformat(),
    }
    anns = app.create(ann, body | {"title": "ann's"})["id"]
    bens = app.create(ben, body | {"title": "ben's"})["id"]
    now = app.services.clock()
    # Given ann's event leased by another push (a worker still writing it)
    with app.services.sessions.begin() as session:
        assert outbox.claim_event(
            session, uuid.UUID(anns), now=now, until=now + timedelta(minutes=5)
        )
    with app.services.sessions.begin() as session:  # a second claim loses
        assert not outbox.claim_event(
            session, uuid.UUID(anns), now=now, until=now + timedelta(minutes=5)
        )
    # When both events are pushed
    # Then ann's is busy and not sent; ben's, not leased, is synced
    assert app.push(anns).status is PushStatus.BUSY
    assert app.push(bens).status is PushStatus.SYNCED
    assert app.remote(ann).list(calendarId=ann.primary).execute().get("items", []) == []
    # And once the lease is given back, ann's push writes it, once
    with app.services.sessions.begin() as session:
        outbox.release_event(session, uuid.UUID(anns))
    assert lease_of(app, anns) is None
    assert app.push(anns).status is PushStatus.SYNCED
    for user, title in ((ann, "ann's"), (ben, "ben's")):
        listed = app.remote(user).list(calendarId=user.primary).execute()["items"]
        assert [e["summary"] for e in listed] == [title], listed
