"""expanded list indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 12:40:10.189559

Partial indexes for expanded event lists: the singles of a range in start order,
answered from the index alone, and the series masters apart from the singles.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_events_masters_by_start",
        "events",
        ["user_id", "start_time"],
        unique=False,
        postgresql_where=sa.text("is_recurring IS true"),
        sqlite_where=sa.text("is_recurring = 1"),
    )
    op.create_index(
        "ix_events_singles_by_start",
        "events",
        ["user_id", "start_time", "id"],
        unique=False,
        postgresql_include=["end_time", "status", "category", "calendar_id"],
        postgresql_where=sa.text(
            "is_recurring IS false AND recurring_event_id IS NULL AND deleted_at IS NULL"
        ),
        sqlite_where=sa.text(
            "is_recurring = 0 AND recurring_event_id IS NULL AND deleted_at IS NULL"
        ),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_events_singles_by_start",
        table_name="events",
        postgresql_include=["end_time", "status", "category", "calendar_id"],
        postgresql_where=sa.text(
            "is_recurring IS false AND recurring_event_id IS NULL AND deleted_at IS NULL"
        ),
        sqlite_where=sa.text(
            "is_recurring = 0 AND recurring_event_id IS NULL AND deleted_at IS NULL"
        ),
    )
    op.drop_index(
        "ix_events_masters_by_start",
        table_name="events",
        postgresql_where=sa.text("is_recurring IS true"),
        sqlite_where=sa.text("is_recurring = 1"),
    )
