"""convergence audit and the mass-deletion hold

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 10:00:00.000000

``calendars.next_audit_at``: when the calendar's next convergence audit (a full listing
compared with the local copy) is due, spread over the audit period by calendar id.
``calendars.held_deletions`` and ``deletions_held_at``: the Google ids of the events a
full listing would have deleted en masse, held until a second listing agrees.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("calendars", sa.Column("next_audit_at", sa.DateTime(timezone=True)))
    op.add_column(
        "calendars",
        sa.Column(
            "held_deletions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        ),
    )
    op.add_column("calendars", sa.Column("deletions_held_at", sa.DateTime(timezone=True)))
    op.create_index(op.f("ix_calendars_next_audit_at"), "calendars", ["next_audit_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_calendars_next_audit_at"), table_name="calendars")
    op.drop_column("calendars", "deletions_held_at")
    op.drop_column("calendars", "held_deletions")
    op.drop_column("calendars", "next_audit_at")
