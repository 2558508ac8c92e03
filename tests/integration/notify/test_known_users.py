"""events_changed with ``known_users``: the same notices as with its own user lookup, which
it skips only when the known users are all the lookup could find."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Attendee, Event, EventTime
from calsync.notify.changes import EventChange, events_changed
from calsync.store.tables import NotificationDelivery, User
from tests.integration.notify.conftest import add_calendar, add_event, add_user

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
ALICE, BOB = "alice@example.com", "bob@example.com"


def event(organizer: str, *attendees: str) -> Event:
    start = datetime(2026, 6, 3, 14, 0)
    return Event(
        title="Planning",
        start=EventTime.at(start, "Europe/Berlin"),
        end=EventTime.at(start.replace(hour=15), "Europe/Berlin"),
        organizer_email=organizer,
        attendees=tuple(Attendee(email=a) for a in attendees),
        provider_event_id="plan1",
    )


@contextmanager
def user_lookups(session: Session) -> Iterator[list[str]]:
    """The statements run on the session's connection that read ``users``."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM users" in statement:
            seen.append(statement)

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def notices(
    sessions: sessionmaker[Session],
    before: Event,
    *,
    known: dict[str, str] | None,
    disabled: str | None = None,
) -> tuple[set[tuple[str, str, str]], int]:
    """(recipient email, channel, dedupe key) of the notices recorded for Alice's event
    when Google moves it, and how many user lookups ran; rolled back afterwards."""
    with sessions() as session:
        ids = {ALICE: add_user(session, ALICE), BOB: add_user(session, BOB)}
        if disabled is not None:
            session.execute(sa.update(User).where(User.email == disabled).values(status="disabled"))
        calendar_id = add_calendar(session, ids[ALICE])
        event_id = add_event(session, before, user_id=ids[ALICE], calendar_id=calendar_id)
        after = dataclasses.replace(before, title="Planning (moved)")
        known_users = None if known is None else {ids[e]: e for e in known}
        with user_lookups(session) as lookups:
            events_changed(
                session,
                [EventChange(event_id, before, after, owner_id=ids[ALICE])],
                actor_user_id=None,
                source="sync",
                now=NOW,
                known_users=known_users,
            )
        emails = {user_id: email for email, user_id in ids.items()}
        rows = session.scalars(sa.select(NotificationDelivery)).all()
        found = {(emails[r.user_id], r.channel, r.dedupe_key.split("|")[1]) for r in rows}
        session.rollback()
    return found, len(lookups)


@pytest.mark.parametrize(
    ("before", "known", "disabled", "lookups"),
    [
        pytest.param(event(ALICE), {ALICE: ALICE}, None, 0, id="owner-organizer-only"),
        pytest.param(event(BOB), {ALICE: ALICE}, None, 1, id="organizer-not-known"),
        pytest.param(event(BOB), {ALICE: ALICE, BOB: BOB}, None, 0, id="all-known"),
        pytest.param(event(ALICE, BOB), {ALICE: ALICE}, None, 1, id="attendee-not-known"),
        pytest.param(event(ALICE, "carol@elsewhere.org"), {ALICE: ALICE}, None, 1, id="guest"),
        pytest.param(event(BOB), {}, ALICE, 1, id="owner-disabled-so-not-known"),
    ],
)
def test_known_users_give_the_notices_of_the_lookup(
    sessions: sessionmaker[Session],
    before: Event,
    known: dict[str, str],
    disabled: str | None,
    lookups: int,
) -> None:
    looked_up, _ = notices(sessions, before, known=None, disabled=disabled)
    given, ran = notices(sessions, before, known=known, disabled=disabled)

    assert given == looked_up
    assert ran == lookups


def test_the_owner_is_told_of_a_change_by_another_organizer(
    sessions: sessionmaker[Session],
) -> None:
    found, ran = notices(sessions, event(BOB), known={ALICE: ALICE, BOB: BOB})

    assert ran == 0
    assert {(email, channel) for email, channel, _ in found} == {(ALICE, "email")}


def test_a_known_user_list_without_an_owner_is_not_used(
    sessions: sessionmaker[Session],
) -> None:
    _, ran = notices(sessions, event(ALICE), known={BOB: BOB})

    assert ran == 1
