"""the read model's change records per statement on PostgreSQL, one per unchanged owner

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 02:20:00.000000

A full sync's ``COPY`` of 10,000 ``events`` rows fired the read
model's row triggers (migrations 0015, 0016) once per row: a PL/pgSQL call and a
single-row ``INSERT`` into ``instance_dirty`` each (decision HJ2). On PostgreSQL the
triggers are now statement-level with transition tables: a statement records all its
changes in one ``INSERT ... SELECT``. SQLite keeps its row triggers (it has no
transition tables). Both record the same changes (tests/integration/events/
test_read_model_records.py):

- an insert or delete of an ``events`` row: its (user, id, calendar, series reference);
- an update that changes what is listed or shown: the old and the new, but only once
  when they are the same (they almost always are: one record per owner, not two);
- an insert, update or delete of an ``event_attendees`` row: its event's, once per row
  (migration 0016's row triggers, unchanged: attendees are written by ``executemany``,
  one statement per row, so a statement trigger would gain nothing there; decision HJ2).

``events.id`` is never updated (calsync writes new rows under new ids): the update
trigger pairs the old and new rows by it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What 0016's update trigger watches (what a listed item or a document depends on).
_WATCHED = (
    "user_id",
    "calendar_id",
    "google_event_id",
    "category",
    "start_time",
    "end_time",
    "timezone",
    "end_timezone",
    "all_day",
    "is_recurring",
    "recurrence_rule",
    "recurring_event_id",
    "original_start_time",
    "original_start_timezone",
    "status",
    "deleted_at",
    "version",
    "title",
    "description",
    "location",
    "reminders",
    "metadata",
    "organizer_email",
    "transparency",
    "visibility",
    "color_id",
    "conference",
    "sync_state",
    "sync_error",
    "conflict",
    "event_type",
    "type_properties",
    "created_at",
    "updated_at",
)
_KEY = ("user_id", "id", "calendar_id", "recurring_event_id")
_COLUMNS = "user_id, event_id, calendar_id, series_ref"
_ON = "EXISTS (SELECT 1 FROM instance_horizon)"


def _values(row: str) -> str:
    return ", ".join(f"{row}.{c}" for c in _KEY)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgres_down()
        _postgres_events()
    else:
        _sqlite_update(both=False)


def _postgres_down() -> None:
    op.execute("DROP TRIGGER events_instances_update ON events")
    op.execute("DROP TRIGGER events_instances_write ON events")
    op.execute("DROP FUNCTION calsync_instances_dirty()")


def _postgres_events() -> None:
    changed = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in _WATCHED)
    # built from this module's constant column names alone, never input
    op.execute(
        f"""
        CREATE FUNCTION calsync_instances_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM instance_horizon) THEN
                RETURN NULL;  -- the model is off: nothing to keep (decision V8)
            END IF;
            IF TG_OP = 'INSERT' THEN
                INSERT INTO instance_dirty ({_COLUMNS}, xact)
                SELECT {_values("n")}, txid_current() FROM new_rows n;
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO instance_dirty ({_COLUMNS}, xact)
                SELECT {_values("o")}, txid_current() FROM old_rows o;
            ELSE  -- the old and the new, once when they are the same (decision HJ3)
                INSERT INTO instance_dirty ({_COLUMNS}, xact)
                SELECT k.*, txid_current() FROM (
                    SELECT {_values("o")} FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE {changed}
                    UNION
                    SELECT {_values("n")} FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE {changed}
                ) k;
            END IF;
            RETURN NULL;
        END $$
        """  # noqa: S608
    )
    _statement_triggers("events_instances", "events", "calsync_instances_dirty")


def _statement_triggers(prefix: str, table: str, function: str) -> None:
    """One trigger per operation: PostgreSQL allows transition tables only so."""
    for operation, tables in (
        ("insert", "NEW TABLE AS new_rows"),
        ("delete", "OLD TABLE AS old_rows"),
        ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER {prefix}_{operation} AFTER {operation.upper()} ON {table}"
            f" REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def _sqlite_update(*, both: bool) -> None:
    """SQLite's update trigger on ``events``: the old row's record, and the new one's
    unless it is the same (always, when `both`: migration 0016's)."""
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _WATCHED)
    differs = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _KEY)
    new = f"SELECT {_values('NEW')}" + ("" if both else f" WHERE {differs}")
    op.execute("DROP TRIGGER events_instances_update")
    op.execute(
        "CREATE TRIGGER events_instances_update AFTER UPDATE ON events"  # noqa: S608
        f" WHEN {_ON} AND ({changed}) BEGIN"
        f" INSERT INTO instance_dirty ({_COLUMNS}) VALUES ({_values('OLD')});"
        f" INSERT INTO instance_dirty ({_COLUMNS}) {new}; END"
    )  # built from this module's constants alone, never input


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _sqlite_update(both=True)
        return
    for operation in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER events_instances_{operation} ON events")
    op.execute("DROP FUNCTION calsync_instances_dirty()")
    _postgres_0016()


def _postgres_0016() -> None:
    """Migration 0016's row triggers on ``events``, as they were."""
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _WATCHED)
    row = "INSERT INTO instance_dirty ({}, xact) VALUES ({}, txid_current());"
    op.execute(
        f"""
        CREATE FUNCTION calsync_instances_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM instance_horizon) THEN
                RETURN NULL;
            END IF;
            IF TG_OP <> 'INSERT' THEN {row.format(_COLUMNS, _values("OLD"))} END IF;
            IF TG_OP <> 'DELETE' THEN {row.format(_COLUMNS, _values("NEW"))} END IF;
            RETURN NULL;
        END $$
        """  # noqa: S608
    )
    op.execute(
        "CREATE TRIGGER events_instances_write AFTER INSERT OR DELETE ON events"
        " FOR EACH ROW EXECUTE FUNCTION calsync_instances_dirty()"
    )
    op.execute(
        "CREATE TRIGGER events_instances_update AFTER UPDATE ON events"
        f" FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION calsync_instances_dirty()"
    )
