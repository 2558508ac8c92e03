"""rendered documents of the read model

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 19:40:00.000000

Pages of the read model render nothing (issue 19, decisions X1-X3):

- ``event_documents``: the API's JSON of every live single, series master (as the
  template of its generated instances, with the zone of its end and the id its
  instances carry on Google) and exception (as its series lists it), rendered by the
  read model's upkeep in the transaction that changed the row.
- The ``events`` update trigger now also fires when a shown column changes (title,
  description, sync state...), and ``event_attendees`` gets triggers of its own: every
  change a document shows is recorded for the upkeep, as changes of what is listed were.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What 0015's update trigger watched (what a listed item depends on).
_LISTED = (
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
)
#: What a document shows besides (`calsync.events.views.event_json`).
_SHOWN = (
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
_COLUMNS = "user_id, event_id, calendar_id, series_ref"
_OF_EVENT = "SELECT e.user_id, e.id, e.calendar_id, e.recurring_event_id FROM events e"
_ON = "EXISTS (SELECT 1 FROM instance_horizon)"


def _values(row: str) -> str:
    return f"{row}.user_id, {row}.id, {row}.calendar_id, {row}.recurring_event_id"


def upgrade() -> None:
    op.create_table(
        "event_documents",
        sa.Column(
            "event_id",
            sa.Uuid(),
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("end_zone", sa.String(64), nullable=True),
        sa.Column("series_id", sa.String(1024), nullable=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres(_LISTED + _SHOWN)
        _postgres_attendees()
    else:
        _sqlite(_LISTED + _SHOWN)
        _sqlite_attendees()


def _postgres(watched: Sequence[str]) -> None:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in watched)
    op.execute("DROP TRIGGER events_instances_update ON events")
    op.execute(
        "CREATE TRIGGER events_instances_update AFTER UPDATE ON events"
        f" FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION calsync_instances_dirty()"
    )


def _sqlite(watched: Sequence[str]) -> None:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
    insert = "INSERT INTO instance_dirty ({}) VALUES ({});"
    op.execute("DROP TRIGGER events_instances_update")
    op.execute(
        "CREATE TRIGGER events_instances_update AFTER UPDATE ON events"
        f" WHEN {_ON} AND ({changed}) BEGIN "
        + insert.format(_COLUMNS, _values("OLD"))
        + " "
        + insert.format(_COLUMNS, _values("NEW"))
        + " END"
    )


def _postgres_attendees() -> None:
    # built from this module's constants alone, never input
    op.execute(
        f"""
        CREATE FUNCTION calsync_attendees_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM instance_horizon) THEN
                RETURN NULL;  -- the model is off (decision V8)
            END IF;
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO instance_dirty ({_COLUMNS}, xact)
                SELECT e.user_id, e.id, e.calendar_id, e.recurring_event_id, txid_current()
                FROM events e WHERE e.id = OLD.event_id;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                INSERT INTO instance_dirty ({_COLUMNS}, xact)
                SELECT e.user_id, e.id, e.calendar_id, e.recurring_event_id, txid_current()
                FROM events e WHERE e.id = NEW.event_id;
            END IF;
            RETURN NULL;
        END $$
        """  # noqa: S608
    )
    op.execute(
        "CREATE TRIGGER event_attendees_instances AFTER INSERT OR UPDATE OR DELETE"
        " ON event_attendees FOR EACH ROW EXECUTE FUNCTION calsync_attendees_dirty()"
    )


def _sqlite_attendees() -> None:
    for name, row in (("insert", "NEW"), ("delete", "OLD")):
        op.execute(
            f"CREATE TRIGGER event_attendees_instances_{name} AFTER {name.upper()}"
            f" ON event_attendees WHEN {_ON} BEGIN INSERT INTO instance_dirty ({_COLUMNS})"
            f" {_OF_EVENT} WHERE e.id = {row}.event_id; END"
        )
    op.execute(
        "CREATE TRIGGER event_attendees_instances_update AFTER UPDATE ON event_attendees"
        f" WHEN {_ON} BEGIN INSERT INTO instance_dirty ({_COLUMNS})"
        f" {_OF_EVENT} WHERE e.id = OLD.event_id OR e.id = NEW.event_id; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER event_attendees_instances ON event_attendees")
        op.execute("DROP FUNCTION calsync_attendees_dirty()")
        _postgres(_LISTED)
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER event_attendees_instances_{name}")
        _sqlite(_LISTED)
    op.drop_table("event_documents")
