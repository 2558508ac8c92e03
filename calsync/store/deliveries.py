"""Notice deliveries (``notification_deliveries``): what the notifier sends, when, and how
each attempt went (change notices and reminders). Nothing here commits.

Pending reminders are replanned while a sender may hold one (locked, being sent): a
replan first locks the rows it deletes or moves (`lock_pending`, in id order) and waits
for a sender that holds one, never skips it: a sender's transaction may end with the row
still pending (held by quiet hours, a retry, a crash), and a skipped row then outlived
the plan that removed it and was sent (decision JP1).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calsync.store.events import any_of
from calsync.store.tables import NotificationDelivery

__all__ = [
    "add_new",
    "add_pending",
    "claim_due",
    "delete_pending",
    "events_with_pending_reminders",
    "later_reminder_due",
    "lock_pending",
    "move_pending",
    "newest_of_user",
    "pending_reminders",
]


def newest_of_user(
    session: Session,
    user_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> Sequence[NotificationDelivery]:
    """At most `limit` of `user_id`'s rows (never another user's), newest first by
    ``(created_at, id)``, those before the key `before` only; of `status` and `kind` if
    given."""
    query = sa.select(NotificationDelivery).where(NotificationDelivery.user_id == user_id)
    if status is not None:
        query = query.where(NotificationDelivery.status == status)
    if kind is not None:
        query = query.where(NotificationDelivery.kind == kind)
    if before is not None:
        created_at, row_id = before
        query = query.where(
            sa.or_(
                NotificationDelivery.created_at < created_at,
                sa.and_(
                    NotificationDelivery.created_at == created_at,
                    NotificationDelivery.id < row_id,
                ),
            )
        )
    return session.scalars(
        query.order_by(
            NotificationDelivery.created_at.desc(), NotificationDelivery.id.desc()
        ).limit(limit)
    ).all()


def claim_due(session: Session, now: datetime) -> NotificationDelivery | None:
    """The pending row due first (at `now` or earlier), locked for this transaction;
    rows another sender holds are skipped (PostgreSQL ``SKIP LOCKED``)."""
    return session.scalars(
        sa.select(NotificationDelivery)
        .where(NotificationDelivery.status == "pending", NotificationDelivery.due_at <= now)
        .order_by(NotificationDelivery.due_at, NotificationDelivery.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()


def later_reminder_due(session: Session, row: NotificationDelivery, now: datetime) -> bool:
    """Whether a reminder of the same occurrence on the same channel with a shorter lead
    than `row`'s, due by `now`, is pending or sent (a sibling that makes `row` useless).
    By lead, not by due time: quiet hours may have held both to the same due time."""
    later = session.scalar(
        sa.select(NotificationDelivery.id)
        .where(
            NotificationDelivery.event_id == row.event_id,
            NotificationDelivery.kind == "reminder",
            NotificationDelivery.channel == row.channel,
            NotificationDelivery.occurrence_start == row.occurrence_start,
            NotificationDelivery.status.in_(("pending", "sent")),
            NotificationDelivery.lead_minutes < row.lead_minutes,
            NotificationDelivery.due_at <= now,
        )
        .limit(1)
    )
    return later is not None


def add_new(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert `rows` (every column given), skipping those whose ``dedupe_key`` is
    recorded already. Returns how many were inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(
        insert(NotificationDelivery)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(NotificationDelivery.id),
        rows,
    )
    return len(result.all())


_deliveries = cast(sa.Table, NotificationDelivery.__table__)
#: `add_pending`'s insert of the table's rows by dialect, built once: a Core insert, not
#: the ORM's bulk insert of the entity, which cost a create more than its round trip
#: (decision IF3).
_ADD_PENDING: Final = {
    "postgresql": postgresql.insert(_deliveries).on_conflict_do_nothing(
        index_elements=["dedupe_key"]
    ),
    "sqlite": sqlite.insert(_deliveries).on_conflict_do_nothing(index_elements=["dedupe_key"]),
}


def add_pending(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (every column given), skipping those whose ``dedupe_key`` is
    recorded already (a reminder sent once is never planned again)."""
    if not rows:
        return
    session.execute(_ADD_PENDING[session.get_bind().dialect.name], list(rows))


#: The pending reminders (of the events the caller's condition picks).
_PENDING_ROWS: Final = sa.select(
    NotificationDelivery.id,
    NotificationDelivery.event_id,
    NotificationDelivery.dedupe_key,
    NotificationDelivery.due_at,
    NotificationDelivery.payload,
).where(NotificationDelivery.kind == "reminder", NotificationDelivery.status == "pending")


def pending_reminders(session: Session, event_ids: Sequence[uuid.UUID]) -> Iterator[Any]:
    """The pending reminders of `event_ids`: ``id``, ``event_id``, ``dedupe_key``,
    ``due_at`` and ``payload``."""
    for match in any_of(session, NotificationDelivery.event_id, event_ids):
        yield from session.execute(_PENDING_ROWS.where(match))


def events_with_pending_reminders(
    session: Session, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of `event_ids` have pending reminders."""
    found: set[uuid.UUID] = set()
    for match in any_of(session, NotificationDelivery.event_id, event_ids):
        found.update(
            session.scalars(
                sa.select(NotificationDelivery.event_id)
                .where(
                    match,
                    NotificationDelivery.kind == "reminder",
                    NotificationDelivery.status == "pending",
                )
                .distinct()
            )
        )
    found.discard(None)
    return found


def lock_pending(session: Session, ids: Collection[uuid.UUID]) -> None:
    """Lock the rows `ids` for this transaction in id order (PostgreSQL ``FOR UPDATE``;
    one order, so concurrent replans never wait on each other in opposite orders),
    waiting for a sender or a replan that holds one. Call before `delete_pending` and
    `move_pending` with every id they will be given. Nothing on SQLite (one writer, no
    row locks: the delete and update that follow take the write lock, as before)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for match in any_of(session, NotificationDelivery.id, sorted(ids)):
        session.execute(
            sa.select(NotificationDelivery.id)
            .where(match)
            .order_by(NotificationDelivery.id)
            .with_for_update()
        ).all()


def delete_pending(session: Session, ids: Collection[uuid.UUID]) -> None:
    """Delete those of the rows `ids` that are still pending (locked by `lock_pending`
    first: a row a sender has meanwhile recorded as sent stays)."""
    for match in any_of(session, NotificationDelivery.id, list(ids)):
        session.execute(
            sa.delete(NotificationDelivery).where(match, NotificationDelivery.status == "pending"),
            execution_options={"synchronize_session": False},
        )


#: A pending reminder's new payload and due time (the row locked by `lock_pending`).
_MOVE_PENDING: Final = sa.update(_deliveries).where(
    _deliveries.c.id == sa.bindparam("_id"), _deliveries.c.status == "pending"
)


def move_pending(session: Session, moved: Sequence[dict[str, Any]], *, now: datetime) -> None:
    """Give pending reminders a new ``payload`` and ``due_at`` (`moved`: one dict of them
    and the row's ``_id`` each; locked by `lock_pending` first); one executemany (a
    single round trip on PostgreSQL's pipeline)."""
    if moved:
        session.connection().execute(_MOVE_PENDING.values(updated_at=now), moved)
