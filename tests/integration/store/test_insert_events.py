"""`insert_events` (binary ``COPY`` with orjson documents on PostgreSQL) and `update_events`
(``UPDATE ... FROM (VALUES ...)``) store exactly what a plain ``INSERT`` or ``UPDATE``
through the engine stores, on both databases."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.codec import event_to_document
from calsync.domain.models import Event
from calsync.store import event_bulk_writes
from calsync.store.event_bulk_writes import insert_events, update_events
from calsync.store.events import EVENT_COLUMNS, event_columns, load_stored
from calsync.store.tables import Event as EventRow
from tests.owners import add_owner
from tests.strategies import events

_events = EventRow.__table__
#: What differs between two rows of the same event by construction.
_OWN = {"id", "google_event_id", "created_at", "updated_at"}


@pytest.fixture
def owner(sessions: sessionmaker[Session]) -> tuple[uuid.UUID, uuid.UUID]:
    with sessions.begin() as session:
        return add_owner(session)


def _row(event: Event, owner: tuple[uuid.UUID, uuid.UUID], **extra: Any) -> dict[str, Any]:
    user_id, calendar_id = owner
    return {
        **event_columns(event),
        "google_event_id": f"g{uuid.uuid4().hex}",
        "id": uuid.uuid4(),
        "user_id": user_id,
        "calendar_id": calendar_id,
        "sync_state": "synced",
        "base_version": event_to_document(event),
        **extra,
    }


def _stored(session: Session, event_id: uuid.UUID) -> dict[str, Any]:
    row = session.execute(sa.select(_events).where(_events.c.id == event_id)).one()
    return {k: v for k, v in row._mapping.items() if k not in _OWN}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=events())
def test_copied_rows_equal_inserted_rows(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID], event: Event
) -> None:
    event = dataclasses.replace(
        event, etag='"7"', updated=datetime(2026, 5, 1, tzinfo=UTC), attendees=()
    )  # attendees have rows of their own
    copied, inserted = _row(event, owner), _row(event, owner, version=1)
    with sessions.begin() as session:
        insert_events(session, [copied])
        session.execute(sa.insert(_events), [inserted])
    with sessions() as session:
        assert _stored(session, copied["id"]) == _stored(session, inserted["id"])
        stored = load_stored(session, copied["id"])
    assert stored is not None
    assert stored.event == dataclasses.replace(
        event, calsync_id=str(copied["id"]), provider_event_id=copied["google_event_id"]
    )


def test_documents_keep_their_values_whatever_their_spelling(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """Non-ASCII text, escapes, big and float numbers, nesting and key order."""
    document = {
        "z": 'Zürich 東京 🎉 "quoted" back\\slash tab\t newline\n \u2028 \x01',
        "a": [1, -2, 2**53, 1.5, 1e16, 0.1, True, False, None],
        "nested": {"b": {"c": []}, "a": {}},
    }
    row = _row(
        Event.trusted(**{**_plain_fields(), "metadata": {}}),
        owner,
        base_version=document,
        metadata={"ключ": "значение ✓"},
    )
    plain = {**row, "id": uuid.uuid4(), "google_event_id": "plain", "version": 1}
    with sessions.begin() as session:
        insert_events(session, [row])
        session.execute(sa.insert(_events), [plain])
    with sessions() as session:
        copied, inserted = _stored(session, row["id"]), _stored(session, plain["id"])
        assert copied == inserted
        assert copied["base_version"] == document
        assert copied["metadata"] == {"ключ": "значение ✓"}
        if session.get_bind().dialect.name == "postgresql":
            same = session.scalar(
                sa.text("SELECT count(*) FROM events WHERE base_version = CAST(:doc AS jsonb)"),
                {"doc": json.dumps(document)},  # the standard encoder's spelling
            )
            assert same == 2


def test_rows_made_as_they_are_sent_with_the_columns_given(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID]
) -> None:
    event = Event.trusted(**_plain_fields())
    rows = [_row(event, owner, version=n) for n in (1, 2, 3)]
    columns = list(rows[0])
    assert set(EVENT_COLUMNS) <= set(columns)
    made: list[int] = []

    def lazily() -> Iterator[dict[str, Any]]:
        for row in rows:
            made.append(row["version"])
            yield row

    with sessions.begin() as session:
        insert_events(session, lazily(), columns=columns)
    assert made == [1, 2, 3]
    with sessions() as session:
        versions = session.scalars(
            sa.select(_events.c.version).where(_events.c.id.in_([r["id"] for r in rows]))
        ).all()
    assert sorted(versions) == [1, 2, 3]


def test_a_row_without_a_given_column_is_refused(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID]
) -> None:
    row = _row(Event.trusted(**_plain_fields()), owner)
    with pytest.raises((KeyError, sa.exc.StatementError)), sessions.begin() as session:
        insert_events(session, [row], columns=[*row, "version"])


def _plain_fields() -> dict[str, Any]:
    from calsync.domain.models import EventTime

    start = EventTime.at(datetime(2026, 5, 1, 9, tzinfo=UTC), "UTC")
    event = Event(start=start, end=start, title="plain")
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}


# --- update_events ---------------------------------------------------------------------


def _changes(event: Event, row_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {
        **event_columns(event),
        "_id": row_id,
        "sync_state": "synced",
        "sync_error": None,
        "conflict": None,
        "base_version": event_to_document(event),
        "version": 2,
        **extra,
    }


def _twins(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID], count: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """`count` pairs of equal rows: one for `update_events`, one for a plain ``UPDATE``."""
    event = Event.trusted(**_plain_fields())
    pairs = [(uuid.uuid4(), uuid.uuid4()) for _ in range(count)]
    with sessions.begin() as session:
        rows = [_row(event, owner, id=i) for pair in pairs for i in pair]
        session.execute(sa.insert(_events), rows)
    return pairs


def _plainly(session: Session, rows: list[dict[str, Any]]) -> None:
    statement = sa.update(_events).where(_events.c.id == sa.bindparam("_id"))
    for values in rows:
        session.execute(statement, [values])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changed=st.lists(events(), min_size=1, max_size=4))
def test_updated_rows_equal_rows_updated_one_by_one(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID], changed: list[Event]
) -> None:
    pairs = _twins(sessions, owner, len(changed))
    ours, theirs = [], []
    for n, ((mine, other), event) in enumerate(zip(pairs, changed, strict=True)):
        event = dataclasses.replace(event, etag=f'"{n}"', attendees=())
        extra: dict[str, Any] = {"conflict": {"why": "ü"}} if n % 2 else {}
        ours.append(_changes(event, mine, **extra))
        theirs.append(_changes(event, other, **extra))
    with sessions.begin() as session:
        update_events(session, ours)  # mixed column sets: one statement per set
        _plainly(session, theirs)
    with sessions() as session:
        for mine, other in pairs:
            assert _stored(session, mine) == _stored(session, other)


def test_an_update_sets_updated_at_and_keeps_other_columns(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID]
) -> None:
    ((mine, _),) = _twins(sessions, owner, 1)
    with sessions() as session:
        before = session.execute(sa.select(_events).where(_events.c.id == mine)).one()
    with sessions.begin() as session:
        update_events(session, [{"_id": mine, "title": "new", "metadata": {"k": "v"}}])
    with sessions() as session:
        after = session.execute(sa.select(_events).where(_events.c.id == mine)).one()
    assert (after.title, after.metadata) == ("new", {"k": "v"})
    assert after.updated_at > before.updated_at
    assert after.version == before.version
    assert after.base_version == before.base_version


def test_repeated_ids_are_updated_in_order(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID]
) -> None:
    ((mine, _),) = _twins(sessions, owner, 1)
    with sessions.begin() as session:
        update_events(session, [{"_id": mine, "title": "first"}, {"_id": mine, "title": "last"}])
    with sessions() as session:
        assert session.scalar(sa.select(_events.c.title).where(_events.c.id == mine)) == "last"


def test_bad_updates_are_refused(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID]
) -> None:
    ((mine, _),) = _twins(sessions, owner, 1)
    with pytest.raises((ValueError, sa.exc.StatementError)), sessions.begin() as session:
        update_events(session, [{"_id": mine, "remote_updated_at": datetime(2026, 1, 1)}])
    with sessions() as session:
        if session.get_bind().dialect.name != "postgresql":
            return  # SQLAlchemy's executemany leaves out what is not a column
    with pytest.raises(KeyError), sessions.begin() as session:
        update_events(session, [{"_id": mine, "title = 'x', version": 1}])


def _update_as_twins(
    sessions: sessionmaker[Session],
    pairs: list[tuple[uuid.UUID, uuid.UUID]],
    names: tuple[str, ...],
    label: str,
    replanning: tuple[datetime, datetime] | None,
) -> tuple[list[dict[str, Any]], dict[uuid.UUID, Any], bool]:
    """One `update_events` call over the first rows of ``pairs`` with values named after
    ``label``, their twins updated the plain way with the same values, in one transaction:
    (the call's rows, what it returned, whether the database is PostgreSQL)."""
    ours, theirs = [], []
    for i, (mine, other) in enumerate(pairs):
        values = {name: f"{name} {label}.{i}" for name in names}
        ours.append({"_id": mine, **values})
        theirs.append({"_id": other, **values})
    with sessions.begin() as session:
        returned = update_events(session, ours, replanning=replanning)
        _plainly(session, theirs)
        postgres = session.get_bind().dialect.name == "postgresql"
    return ours, returned, postgres


def test_updates_of_one_shape_store_each_call_s_own_values(
    sessions: sessionmaker[Session],
) -> None:
    """Three users' rows updated by calls of the same shapes again and again - the same
    columns and as many rows, or one row more, or other columns, returning the rows for
    the reminders or not - store each call's values, as plain updates of their twins do;
    on PostgreSQL each shape's statement text is built once (decision IU2)."""
    with sessions.begin() as session:
        owners = [add_owner(session) for _ in range(3)]
    pairs = {owner: _twins(sessions, owner, 3) for owner in owners}
    texts = event_bulk_writes._update_text
    texts.cache_clear()
    replanning = (datetime(2026, 12, 7, tzinfo=UTC), datetime(2027, 1, 7, tzinfo=UTC))
    calls = 0
    for round_, (count, names, returning) in enumerate(
        [
            (2, ("title", "etag"), False),
            (2, ("title", "etag"), False),
            (3, ("title", "etag"), False),
            (2, ("location", "etag"), False),
            (2, ("title", "etag"), True),
            (2, ("title", "etag"), True),
        ]
    ):
        for n, owner in enumerate(owners):
            ours, returned, postgres = _update_as_twins(
                sessions,
                pairs[owner][:count],
                names,
                f"{round_}.{n}",
                replanning if returning else None,
            )
            calls += 1
            if postgres and returning:
                assert sorted(returned) == sorted(row["_id"] for row in ours)
                for row in ours:
                    assert returned[row["_id"]].title == row["title"]
                    assert returned[row["_id"]].updated_at.tzinfo == UTC
            else:
                assert returned == {}
            with sessions() as session:
                for mine, other in pairs[owner]:
                    assert _stored(session, mine) == _stored(session, other)
                for row in ours:
                    stored = _stored(session, row["_id"])
                    assert {k: stored[k] for k in names} == {k: row[k] for k in names}
    if postgres:  # four shapes: (2 rows, title), (3 rows), (location), (2 rows, returning)
        assert (texts.cache_info().misses, texts.cache_info().hits) == (4, calls - 4)


def test_updates_from_several_threads_each_store_their_own_values(
    sessions: sessionmaker[Session],
) -> None:
    """Three users' pulls on threads of their own, each updating its rows in calls of
    shapes that the others' calls share or not (as many rows or one more, other columns,
    returning the rows for the reminders or not), all at once from an emptied cache of
    statement texts: every row ends with its own call's values (review SA: the texts
    kept by shape, `event_bulk_writes._update_text`, are shared by the worker's threads)."""
    with sessions.begin() as session:
        owners = [add_owner(session) for _ in range(3)]
    pairs = {owner: _twins(sessions, owner, 4) for owner in owners}
    event_bulk_writes._update_text.cache_clear()
    replanning = (datetime(2026, 12, 7, tzinfo=UTC), datetime(2027, 1, 7, tzinfo=UTC))
    shapes = [
        (2, ("title", "etag"), False),
        (3, ("title", "etag"), True),
        (2, ("location", "etag"), False),
        (4, ("etag", "location", "title"), True),
    ]
    start = threading.Barrier(len(owners))
    failures: list[BaseException] = []

    def pull(n: int, owner: tuple[uuid.UUID, uuid.UUID]) -> None:
        try:
            start.wait()
            for round_ in range(8):
                count, names, returning = shapes[(round_ + n) % len(shapes)]
                ours, returned, postgres = _update_as_twins(
                    sessions,
                    pairs[owner][:count],
                    names,
                    f"{round_}.{n}",
                    replanning if returning else None,
                )
                if postgres and returning:
                    assert sorted(returned) == sorted(row["_id"] for row in ours)
                    assert all(returned[r["_id"]].title == r["title"] for r in ours)
                else:
                    assert returned == {}
                with sessions() as session:
                    for row in ours:
                        stored = _stored(session, row["_id"])
                        assert {k: stored[k] for k in names} == {k: row[k] for k in names}
        except BaseException as error:  # reported by the test's thread
            failures.append(error)

    threads = [threading.Thread(target=pull, args=(n, owner)) for n, owner in enumerate(owners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    with sessions() as session:
        for owner in owners:
            for mine, other in pairs[owner]:
                assert _stored(session, mine) == _stored(session, other)
