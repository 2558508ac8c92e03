"""all_day in the singles index

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 10:10:00.000000

A list's window selects timed singles by their instants and all-day ones by their dates
(`calsync.domain.windows`), so its conditions read ``all_day``: the singles' partial
index includes it, and PostgreSQL still answers the singles of a range from the index
alone. SQLite's index includes no columns and is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_events_singles_by_start"
_WHERE = sa.text("is_recurring IS false AND recurring_event_id IS NULL AND deleted_at IS NULL")
_BEFORE = ["end_time", "status", "category", "calendar_id"]
_AFTER = [*_BEFORE, "all_day"]


def _recreate(include: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(_NAME, table_name="events")
    op.create_index(
        _NAME,
        "events",
        ["user_id", "start_time", "id"],
        unique=False,
        postgresql_include=include,
        postgresql_where=_WHERE,
    )


def upgrade() -> None:
    _recreate(_AFTER)


def downgrade() -> None:
    _recreate(_BEFORE)
