"""one foreign key from events to their calendar and its owner

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 21:00:00.000000

``events`` had two foreign keys, ``calendar_id -> calendars.id`` and ``user_id ->
users.id``: two referential checks for every inserted row, on PostgreSQL queued to the
end of the statement (the ``COPY`` of a full sync waits for 10,000 of each; decisions
IT2, IT6, IX). They are replaced by one composite key, ``(calendar_id, user_id) ->
calendars (id, user_id) ON DELETE CASCADE``, on a new unique index of ``calendars (id,
user_id)``. It guarantees more: an event's ``user_id`` is its calendar's owner (every
writer already sets it so: the pull and the full sync from the calendar's row, the API's
create from the caller's own calendar, splits and exceptions from the calendar's owner;
an event never moves between calendars), and the user exists through ``calendars``' own
key. Every cascade stays: a user's delete reaches the events through the calendars.

An existing row whose ``user_id`` is not its calendar's owner stops the upgrade with
`MismatchedOwners`, naming how many and a few ids. It is not repaired: which of the two
columns is wrong cannot be known, and giving the events to the calendar's owner could
show one user's events to another.

SQLite cannot alter a foreign key: ``events`` is rebuilt (SQLite's own procedure: the
new table's statement is the old one's with the keys swapped, the rows copied, the old
table dropped, the new one renamed, its indexes and triggers - the read model's,
migrations 0015, 0016, 0018 - created again from their stored statements). Foreign keys
are switched off for the rebuild, which SQLite allows only outside a transaction: with
them on, dropping ``events`` would delete every row of ``event_attendees``,
``event_documents``, ``event_instances``, the outbox... by their cascades. Before they
are switched on again ``PRAGMA foreign_key_check`` must find nothing; it must find
nothing before the rebuild as well (rows broken already are named as such). The new
unique index is made in the rebuild's transaction, so that a failed rebuild leaves the
file as it was and migrating again runs (review SB2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from alembic import op
from sqlalchemy.engine import Connection

from calsync.store.migrate import MigrationRefused

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNIQUE = "ix_calendars_id_user_id"
#: Both the old ``calendar_id`` key and the composite one take the naming convention's
#: name (its first column's): a database has one or the other.
_KEY = "fk_events_calendar_id_calendars"
_USER_KEY = "fk_events_user_id_users"
_OLD_KEYS = (
    f"CONSTRAINT {_KEY} FOREIGN KEY(calendar_id) REFERENCES calendars (id) ON DELETE CASCADE,",
    f"CONSTRAINT {_USER_KEY} FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE,",
)
_NEW_KEY = (
    f"CONSTRAINT {_KEY} FOREIGN KEY(calendar_id, user_id)"
    " REFERENCES calendars (id, user_id) ON DELETE CASCADE,"
)
_CREATE_UNIQUE = f"CREATE UNIQUE INDEX {_UNIQUE} ON calendars (id, user_id)"
_MISMATCHED = """
    SELECT e.id, e.user_id, c.user_id FROM events e JOIN calendars c ON c.id = e.calendar_id
    WHERE e.user_id <> c.user_id
"""


class MismatchedOwners(MigrationRefused):
    """Events whose ``user_id`` is not their calendar's owner: the key cannot be added."""


def upgrade() -> None:
    _refuse_mismatched(op.get_bind())  # first: on SQLite DDL is not rolled back
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(_UNIQUE, "calendars", ["id", "user_id"], unique=True)
        op.drop_constraint(_USER_KEY, "events", type_="foreignkey")
        op.drop_constraint(_KEY, "events", type_="foreignkey")
        op.create_foreign_key(
            _KEY, "events", "calendars", ["calendar_id", "user_id"], ["id", "user_id"],
            ondelete="CASCADE",
        )  # fmt: skip
    else:  # the index in the rebuild's transaction: a failed rebuild leaves nothing (SB2)
        _sqlite_rebuild(op.get_bind(), _OLD_KEYS, (_NEW_KEY,), first=(_CREATE_UNIQUE,))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_KEY, "events", type_="foreignkey")
        op.create_foreign_key(
            _KEY, "events", "calendars", ["calendar_id"], ["id"], ondelete="CASCADE"
        )
        op.create_foreign_key(_USER_KEY, "events", "users", ["user_id"], ["id"], ondelete="CASCADE")
        op.drop_index(_UNIQUE, "calendars")
    else:
        _sqlite_rebuild(op.get_bind(), (_NEW_KEY,), _OLD_KEYS, last=(f"DROP INDEX {_UNIQUE}",))


def _refuse_mismatched(connection: Connection) -> None:
    """Raise `MismatchedOwners` if any event's ``user_id`` is not its calendar's owner."""
    found = connection.exec_driver_sql(_MISMATCHED).fetchall()
    if found:
        sample = "; ".join(
            f"event {e} has user {u}, its calendar's owner is {o}" for e, u, o in found[:5]
        )
        raise MismatchedOwners(
            f"migration 0019: {len(found)} events' user_id is not their calendar's owner"
            f" ({sample}). Correct or delete them and migrate again; this migration"
            " changed nothing."
        )


def _sqlite_rebuild(
    connection: Connection,
    old: Sequence[str],
    new: Sequence[str],
    *,
    first: Sequence[str] = (),
    last: Sequence[str] = (),
) -> None:
    """Rebuild SQLite's ``events`` with its table statement's constraints `old` replaced
    by `new`, foreign keys off (see the module's docstring), in one transaction of its
    own, with the statements `first` before it and `last` after it: a failure leaves the
    database as it was, so that migrating again runs (SB2). The migration's transaction
    so far is committed first (SQLite's driver opens one only before a write, so DDL
    before it ran outside one anyway)."""
    raw: Any = connection.connection.dbapi_connection
    if raw.in_transaction:
        raw.commit()
    enforced = raw.execute("PRAGMA foreign_keys").fetchone()[0]
    raw.execute("PRAGMA foreign_keys=OFF")
    if raw.execute("PRAGMA foreign_keys").fetchone()[0] != 0:
        raise RuntimeError("migration 0019: SQLite's foreign keys could not be switched off")
    try:
        raw.execute("BEGIN IMMEDIATE")
        try:
            _refuse_broken_keys(raw)
            for statement in first:
                raw.execute(statement)
            _swap_events_table(raw, old, new)
            for statement in last:
                raw.execute(statement)
        except BaseException:
            raw.rollback()
            raise
        raw.commit()
    finally:
        raw.execute("PRAGMA legacy_alter_table=OFF")
        raw.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")


def _refuse_broken_keys(raw: Any) -> None:
    """Stop before the rebuild if SQLite's ``foreign_key_check`` already finds rows
    whose key is broken (in any table: a file edited with its keys off), which the check
    after the rebuild would otherwise blame on it (SB2)."""
    broken = raw.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise MigrationRefused(
            "migration 0019: before any change, foreign_key_check found rows whose"
            f" foreign key is broken (table, rowid, parent, key): {broken[:5]!r}. Delete"
            " or correct them and migrate again; this migration changed nothing."
        )


def _swap_events_table(raw: Any, old: Sequence[str], new: Sequence[str]) -> None:
    """The rebuild's steps, in the caller's transaction."""
    table = raw.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'")
    later = raw.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL"
        " AND type IN ('index', 'trigger') ORDER BY type, name"
    ).fetchall()
    raw.execute(_rebuilt_statement(table.fetchone()[0], old, new))
    raw.execute("INSERT INTO events_0019 SELECT * FROM events")
    raw.execute("DROP TABLE events")
    # other tables' triggers (event_attendees') read ``events``, which does not exist
    # between the drop and the rename: the legacy rename checks no trigger (SQLite's
    # documented way for this procedure)
    raw.execute("PRAGMA legacy_alter_table=ON")
    raw.execute("ALTER TABLE events_0019 RENAME TO events")
    raw.execute("PRAGMA legacy_alter_table=OFF")
    for (sql,) in later:
        raw.execute(sql)
    broken = raw.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration 0019: foreign_key_check found {broken[:5]!r}")


def _rebuilt_statement(statement: str, old: Sequence[str], new: Sequence[str]) -> str:
    """``events``' table statement as ``events_0019``, its constraint lines `old` taken
    out and `new` put in before the last one (which has no comma after it).

    SQLAlchemy wrote one constraint a line (each ending in ", " but the last); a rename
    by SQLite quotes the table's name (``CREATE TABLE "events"``)."""
    lines = [line.rstrip() for line in statement.split("\n")]
    first = re.fullmatch(r'CREATE TABLE "?events"? \((.*)', lines[0])
    if first is None:
        raise RuntimeError(f"migration 0019: events' table statement begins {lines[0]!r}")
    lines[0] = f"CREATE TABLE events_0019 ({first.group(1)}"
    for fragment in old:
        if f"\t{fragment}" not in lines:
            raise RuntimeError(f"migration 0019: events' table statement has no {fragment!r}")
        lines.remove(f"\t{fragment}")
    if lines[-1] != ")":
        raise RuntimeError("migration 0019: events' table statement does not end its own line")
    lines[-2:-2] = [f"\t{fragment}" for fragment in new]
    return "\n".join(lines)
