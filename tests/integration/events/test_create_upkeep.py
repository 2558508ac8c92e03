"""A create's inline upkeep from the row in hand (decisions HI2-HI4), through the HTTP API.

A create of a single stores its item and document from the row it has just written
instead of locking, clearing and re-reading it: its lists must still come from the model
at once and equal per-request expansion, for the writer, for an invited user, and leave
an untouched user's lists as they were; and the create must not send the statements it
no longer needs (its calendar's owner read again, an attendee delete for a new row, the
model's deletes and re-reads of the new row). Both databases, three users.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from calsync.events import read_model
from calsync.store import instances
from calsync.store.tables import Event as EventRow
from calsync.store.tables import NotificationDelivery, event_documents, event_instances
from tests.integration.events.conftest import START, EventsApp, User
from tests.integration.events.test_read_model import Spy
from tests.integration.events.test_read_model_upkeep import (
    expanded,
    filled,
    listing,
    pending,
    spy,
    titles,
)

pytestmark = pytest.mark.integration

__all__ = ["filled", "spy"]  # fixtures, used by name


def single(title: str, days: int, **extra: Any) -> dict[str, Any]:
    start = START + timedelta(days=days, hours=9)
    return {
        "title": title,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=50)).isoformat(),
        **extra,
    }


def test_created_singles_are_listed_from_the_model_at_once(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, (alice, bob, carol) = filled
    carols = listing(app, carol, spy)
    made = app.create(
        alice,
        single(
            "alice invites bob",
            4,
            attendees=[bob.email, "someone@example.org"],
            category="work",
            reminders=[15],
            metadata={"matter": "42"},
            location="Room 1",
            timezone="Europe/Berlin",
        ),
    )
    day = (START + timedelta(days=6)).date()
    made_all_day = app.create(
        alice,
        {
            "title": "alice all day",
            "start_time": day.isoformat(),
            "end_time": (day + timedelta(days=1)).isoformat(),
            "all_day": True,
        },
    )
    bobs = app.create(bob, single("bob alone", 2, description="mine"))
    assert pending(app) == 0  # re-expanded before each commit
    ids = [uuid.UUID(e["id"]) for e in (made, made_all_day, bobs)]
    stored = model_rows(app, ids)
    assert len(stored[0]) == len(stored[1]) == 3
    assert stored == re_expanded(app, ids)  # what the generic re-expansion stores
    for user, mine in ((alice, {"alice invites bob", "alice all day"}), (bob, {"bob alone"})):
        pages, answered = listing(app, user, spy)
        assert answered, user.email
        assert mine <= titles(pages)
        assert pages == expanded(app, user)
    assert "alice all day" not in titles(listing(app, bob, spy)[0])
    assert listing(app, carol, spy) == carols


def model_rows(app: EventsApp, ids: list[uuid.UUID]) -> tuple[list[Any], list[Any]]:
    """The items and documents of these owners, in a comparable order."""
    with app.services.sessions() as session:
        items = session.execute(
            sa.select(*[c for c in event_instances.c if c.name != "id"]).where(
                event_instances.c.owner_id.in_(ids)
            )
        ).all()
        documents = session.execute(
            sa.select(event_documents).where(event_documents.c.event_id.in_(ids))
        ).all()
    return sorted(items, key=str), sorted(documents, key=str)


def re_expanded(app: EventsApp, ids: list[uuid.UUID]) -> tuple[list[Any], list[Any]]:
    """`model_rows` after `read_model.replace_owners` stored these owners again."""
    with app.services.sessions.begin() as session:
        bounds = instances.horizon(session)
        assert bounds is not None
        instances.lock_owners(session, ids)
        read_model.replace_owners(session, ids, bounds)
    return model_rows(app, ids)


@pytest.fixture
def statements(filled: tuple[EventsApp, list[User]]) -> Iterator[list[str]]:
    """The statements the app's engine sends, one string each, from now on."""
    app, _ = filled
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()).lower())

    event.listen(app.services.engine, "before_cursor_execute", record)
    yield seen
    event.remove(app.services.engine, "before_cursor_execute", record)


def test_a_create_sends_none_of_the_statements_it_does_not_need(
    filled: tuple[EventsApp, list[User]], statements: list[str]
) -> None:
    app, (alice, bob, _) = filled
    statements.clear()
    created = app.create(alice, single("counted", 3, attendees=[bob.email]))
    assert created["title"] == "counted"
    # a new single's upkeep runs without a savepoint (decision HV5)
    assert not [s for s in statements if s.startswith(("savepoint", "release"))]
    sent = statements
    calendars = [s for s in sent if re.search(r"\bfrom calendars\b", s)]
    assert len(calendars) == 1, calendars  # its calendar's owner is the caller
    for needless in (
        "delete from event_attendees",  # a new row has none
        "delete from event_instances",  # nor items
        "delete from instance_incomplete",  # nor a held range
        "count(*)",  # the upkeep claims its records at once
    ):
        assert not [s for s in sent if needless in s], needless
    # the row is not read back: its insert returns it (decision HV3), the model stores
    # it from the row in hand (HI4), its reminders are planned from it (HT1)
    reads = [s for s in sent if s.startswith("select") and "events.title" in s]
    assert reads == [], reads
    inserts = [s for s in sent if s.startswith("insert into events ")]
    assert len(inserts) == 1, inserts
    assert "returning" in inserts[0], inserts
    # a new single's upkeep reads no horizon and deletes no document (decision HV1)
    for needless in ("from instance_horizon", "delete from event_documents"):
        assert not [s for s in sent if needless in s], needless
    # on PostgreSQL its item, document and records' removal are one statement (HV6)
    if app.services.engine.dialect.name == "postgresql":
        stored = [s for s in sent if "insert into event_instances" in s]
        assert len(stored) == 1, stored
        assert "insert into event_documents" in stored[0], stored
        assert "delete from instance_dirty" in stored[0], stored
        assert not [s for s in sent if s.startswith("delete from instance_dirty")]


def test_a_create_whose_upkeep_fails_is_still_stored_and_listed(
    filled: tuple[EventsApp, list[User]], spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its savepoint (decision HV5) the new single's upkeep still never fails
    the write: an error there leaves the records, the creates commit, their users' lists
    are expanded (and right) until a run re-expands them, then read from the model.
    (A guard of the contract HV5 keeps: it passed with the savepoint too.)"""
    app, (alice, bob, _) = filled

    def broken(*_args: Any) -> None:
        raise RuntimeError("upkeep broken")

    real = read_model.add_new_singles
    monkeypatch.setattr(read_model, "add_new_singles", broken)
    made = [app.create(user, single(f"{user.email} unkept", 3)) for user in (alice, bob)]
    monkeypatch.setattr(read_model, "add_new_singles", real)  # (undo would drop the spy)
    for user, created in zip((alice, bob), made, strict=True):
        pages, _ = listing(app, user, spy)  # (embedded mode may have run the upkeep)
        assert created["title"] in titles(pages)
        assert pages == expanded(app, user)
    while app.upkeep().more:
        pass
    assert pending(app) == 0
    for user in (alice, bob):
        pages, answered = listing(app, user, spy)
        assert answered, user.email
        assert pages == expanded(app, user)


def _recipients_reads(sent: list[str]) -> list[str]:
    """The change notice's read of its recipients among `sent` (`recipients.active_users`)."""
    return [s for s in sent if "from users" in s and "status !=" in s]


def test_a_create_whose_only_person_is_its_author_reads_no_recipients(
    filled: tuple[EventsApp, list[User]], statements: list[str]
) -> None:
    """Decision HV2: the author is never told, so a create of one's own (owner and
    organizer the caller, no other attendee) has nobody to tell and reads nobody; one
    that invites another user still reads them, and tells them."""
    app, (alice, bob, carol) = filled
    for user in (alice, bob):
        statements.clear()
        app.create(user, single(f"{user.email} alone", 5))
        app.create(user, single(f"{user.email} with self", 6, attendees=[user.email]))
        assert _recipients_reads(statements) == [], user.email
    statements.clear()
    invited = app.create(alice, single("alice invites carol", 7, attendees=[carol.email]))
    assert len(_recipients_reads(statements)) == 1
    with app.services.sessions() as session:
        told = session.execute(
            sa.select(NotificationDelivery.user_id).where(
                NotificationDelivery.event_id == uuid.UUID(invited["id"]),
                NotificationDelivery.kind == "change",
            )
        ).scalars()
        assert set(told) == {carol.id}


def test_a_create_whose_new_single_statement_the_server_refuses_is_not_answered_created(
    filled: tuple[EventsApp, list[User]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review of HV5: without its savepoint, a statement of the new single's upkeep that
    the server refuses (a statement or lock timeout, a cancel, a constraint) aborts the
    transaction on PostgreSQL, and a COMMIT of an aborted transaction is a silent
    ROLLBACK (psycopg raises nothing). The create must then fail, never answer 201 for
    an event, and its outbox row, that were not stored."""
    app, users = filled
    real = instances.add_new_singles

    def refused(session: Any, *args: Any, **kwargs: Any) -> None:
        real(session, *args, **kwargs)
        session.execute(sa.text("SELECT 1 / 0"))  # as a timeout or a cancel would fail

    monkeypatch.setattr(instances, "add_new_singles", refused)
    for user in users[:2]:
        title = f"{user.email} refused upkeep"
        try:
            answer = app.client.post("/events", json=single(title, 4), headers=user.headers)
            status = answer.status_code
        except Exception:  # (the test client re-raises what no handler answered)
            status = 500
        with app.services.sessions() as session:
            stored = session.execute(sa.select(EventRow.id).where(EventRow.title == title)).all()
        if status == 201:
            assert stored, f"{user.email}: answered 201, but the event was not stored"
            assert app.get(user, answer.json()["id"])["title"] == title
        else:
            assert stored == [], status
