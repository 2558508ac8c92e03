"""calendar-list notifications coalesce

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 11:00:00.000000

``users.calendars_dirty`` and ``users.calendars_queued_at``: at most one read of a user's
calendar list queued or running, however many calendar-list notifications arrive, as
``calendars.dirty`` and ``calendars.sync_queued_at`` do for a calendar's events.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("calendars_dirty", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("users", sa.Column("calendars_queued_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("users", "calendars_queued_at")
    op.drop_column("users", "calendars_dirty")
