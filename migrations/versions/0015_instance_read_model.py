"""instance read model

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 16:30:00.000000

The read model of expanded lists (issue 19, decisions V1-V6):

- ``event_instances``: one row per listed item of a user - every live single, and every
  instance of a live series inside the horizon - with its sort instant, end, the row it
  belongs to (``owner_id``), the exception it shows and a version; a page of
  ``GET /events?expand=true`` is one range scan of ``(user_id, sort_at, api_id)``.
- ``instance_incomplete``: series whose expansion over the horizon a bound cut short;
  their users' lists are expanded as before.
- ``instance_dirty``: written by triggers on ``events`` for every row change that can
  change what is listed, consumed (and the owners re-expanded) before the writing
  transaction commits. A user with a row here is listed as before.
- ``instance_horizon``: the one range ``event_instances`` holds series instances for,
  and whether it is ``filled`` (read only then); none until the scheduler first fills
  it. Without it the triggers record nothing and writes pay no upkeep (decision V8).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from calsync.store.types import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What a change to an ``events`` row must touch to change a listed item.
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
)
_COLUMNS = "user_id, event_id, calendar_id, series_ref"


def _values(row: str) -> str:
    return f"{row}.user_id, {row}.id, {row}.calendar_id, {row}.recurring_event_id"


def upgrade() -> None:
    api_id = sa.String(1100).with_variant(sa.String(1100, collation="C"), "postgresql")
    op.create_table(
        "event_instances",
        sa.Column(
            "owner_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("api_id", api_id, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("calendar_id", sa.Uuid(), nullable=False),
        sa.Column("in_series", sa.Boolean(), nullable=False),
        sa.Column("sort_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("long_span", sa.Boolean(), nullable=False),
        sa.Column("original_at", UTCDateTime(), nullable=True),
        sa.Column("original_zone", sa.String(64), nullable=True),
        sa.Column("exception_id", sa.Uuid(), nullable=True),
        sa.Column("bookkeeping_id", sa.Uuid(), nullable=True),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "api_id"),
    )
    op.create_index(
        "ix_event_instances_listing", "event_instances", ["user_id", "sort_at", "api_id"]
    )
    op.create_index(
        "ix_event_instances_long",
        "event_instances",
        ["user_id", "sort_at"],
        postgresql_where=sa.text("long_span"),
        sqlite_where=sa.text("long_span"),
    )
    op.create_table(
        "instance_incomplete",
        sa.Column(
            "owner_id",
            sa.Uuid(),
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False, index=True),
    )
    op.create_table(
        "instance_dirty",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("user_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("calendar_id", sa.Uuid(), nullable=False),
        sa.Column("series_ref", sa.String(1024), nullable=True),
        sa.Column("xact", sa.BigInteger(), nullable=True, index=True),
    )
    op.create_table(
        "instance_horizon",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("filled", sa.Boolean(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_instance_horizon_one"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()


def _postgres_triggers() -> None:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _WATCHED)
    # built from this module's constant column names alone, never input
    op.execute(
        f"""
        CREATE FUNCTION calsync_instances_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM instance_horizon) THEN
                RETURN NULL;  -- the model is off: nothing to keep (decision V8)
            END IF;
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO instance_dirty ({_COLUMNS}, xact)
                VALUES ({_values("OLD")}, txid_current());
            END IF;
            IF TG_OP <> 'DELETE' THEN
                INSERT INTO instance_dirty ({_COLUMNS}, xact)
                VALUES ({_values("NEW")}, txid_current());
            END IF;
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


def _sqlite_triggers() -> None:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _WATCHED)
    on = "EXISTS (SELECT 1 FROM instance_horizon)"  # the model is off without it (V8)
    insert = "INSERT INTO instance_dirty ({}) VALUES ({});"
    op.execute(
        f"CREATE TRIGGER events_instances_insert AFTER INSERT ON events WHEN {on} BEGIN "
        + insert.format(_COLUMNS, _values("NEW"))
        + " END"
    )
    op.execute(
        f"CREATE TRIGGER events_instances_delete AFTER DELETE ON events WHEN {on} BEGIN "
        + insert.format(_COLUMNS, _values("OLD"))
        + " END"
    )
    op.execute(
        "CREATE TRIGGER events_instances_update AFTER UPDATE ON events"
        f" WHEN {on} AND ({changed}) BEGIN "
        + insert.format(_COLUMNS, _values("OLD"))
        + " "
        + insert.format(_COLUMNS, _values("NEW"))
        + " END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER events_instances_update ON events")
        op.execute("DROP TRIGGER events_instances_write ON events")
        op.execute("DROP FUNCTION calsync_instances_dirty()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER events_instances_{name}")
    op.drop_table("instance_horizon")
    op.drop_table("instance_dirty")
    op.drop_table("instance_incomplete")
    op.drop_index("ix_event_instances_long", table_name="event_instances")
    op.drop_index("ix_event_instances_listing", table_name="event_instances")
    op.drop_table("event_instances")
