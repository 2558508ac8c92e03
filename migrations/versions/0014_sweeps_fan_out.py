"""sweeps that fan out and spread

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 16:20:00.000000

``calendars.next_poll_at``: when a calendar's safety-net poll is due, at the calendar's
own offset of the poll interval (decisions Q2); existing rows start empty and the
scheduler places them in bounded batches. ``watch_channels.renewal_claimed_at``: a
channel's renewal is queued once, in a batch job, until the claim runs out (Q1). Indexes
so that each scheduler tick reads only the due rows (Q3): calendars by ``next_poll_at``,
by ``sync_queued_at`` and the dirty ones without a queued pull; channels by user.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIRTY_UNQUEUED = "dirty AND sync_queued_at IS NULL"


def upgrade() -> None:
    op.add_column("calendars", sa.Column("next_poll_at", sa.DateTime(timezone=True)))
    op.add_column("watch_channels", sa.Column("renewal_claimed_at", sa.DateTime(timezone=True)))
    op.create_index(op.f("ix_calendars_next_poll_at"), "calendars", ["next_poll_at"])
    op.create_index(op.f("ix_calendars_sync_queued_at"), "calendars", ["sync_queued_at"])
    op.create_index(
        "ix_calendars_dirty_unqueued",
        "calendars",
        ["id"],
        postgresql_where=sa.text(_DIRTY_UNQUEUED),
        sqlite_where=sa.text("dirty = 1 AND sync_queued_at IS NULL"),
    )
    op.create_index(op.f("ix_watch_channels_user_id"), "watch_channels", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_watch_channels_user_id"), table_name="watch_channels")
    op.drop_index("ix_calendars_dirty_unqueued", table_name="calendars")
    op.drop_index(op.f("ix_calendars_sync_queued_at"), table_name="calendars")
    op.drop_index(op.f("ix_calendars_next_poll_at"), table_name="calendars")
    op.drop_column("watch_channels", "renewal_claimed_at")
    op.drop_column("calendars", "next_poll_at")
