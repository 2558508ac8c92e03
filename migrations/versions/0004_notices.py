"""notices: reminders and change notices

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 12:00:00.000000

The notification tables came with 0001 and 0003; reminders are replanned per event, which
reads and replaces an event's delivery rows, so those rows are indexed by event.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_notification_deliveries_event_id_kind"),
        "notification_deliveries",
        ["event_id", "kind"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_notification_deliveries_event_id_kind"), table_name="notification_deliveries"
    )
