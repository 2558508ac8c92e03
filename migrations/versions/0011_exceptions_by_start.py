"""exceptions by start

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 13:15:00.000000

An expanded list also reads the live exceptions of its range, whose masters it adds:
an instance moved out of its series' span (past its last instance, before its start)
falls in ranges the master's own range misses (issue 17 item 2). A partial index of
exceptions by (user, start) answers that on PostgreSQL from the index alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_events_exceptions_by_start"
_WHERE = sa.text("recurring_event_id IS NOT NULL AND deleted_at IS NULL")
_INCLUDE = ["end_time", "status", "calendar_id", "all_day", "recurring_event_id"]


def upgrade() -> None:
    op.create_index(
        _NAME,
        "events",
        ["user_id", "start_time"],
        unique=False,
        postgresql_include=_INCLUDE,
        postgresql_where=_WHERE,
        sqlite_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index(_NAME, table_name="events", postgresql_where=_WHERE, sqlite_where=_WHERE)
