"""transparency, visibility, colour and conference of events

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 13:30:00.000000

``events.transparency`` (``opaque``/``transparent``, Google's busy/free) and
``events.visibility`` (``default``/``public``/``private``/``confidential``) with Google's
defaults for the rows already there, ``events.color_id`` (Google's event colour id) and
``events.conference`` (a JSON document: the event's conference, decisions P1-P4).
Existing rows read as Google's defaults and no conference until the event next changes
on Google (a pull then stores Google's values); calsync's patches send these fields only
when they differ from Google's last known copy, so the defaults never overwrite Google's
values (decisions P1).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Column-level CHECKs: SQLite adds a column with its CHECK in place (an ALTER TABLE
    # may not add a table constraint there), PostgreSQL as any other constraint.
    op.add_column(
        "events",
        sa.Column(
            "transparency",
            sa.String(length=16),
            sa.CheckConstraint(
                "transparency IN ('opaque', 'transparent')",
                name=op.f("ck_events_transparency_allowed"),
            ),
            server_default="opaque",
            nullable=False,
        ),
    )
    op.add_column(
        "events",
        sa.Column(
            "visibility",
            sa.String(length=16),
            sa.CheckConstraint(
                "visibility IN ('default', 'public', 'private', 'confidential')",
                name=op.f("ck_events_visibility_allowed"),
            ),
            server_default="default",
            nullable=False,
        ),
    )
    op.add_column("events", sa.Column("color_id", sa.String(length=16), nullable=True))
    op.add_column(
        "events",
        sa.Column(
            "conference",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        # the CHECKs name the columns: dropped first (SQLite's batch copies them otherwise)
        batch.drop_constraint(op.f("ck_events_visibility_allowed"), type_="check")
        batch.drop_constraint(op.f("ck_events_transparency_allowed"), type_="check")
        batch.drop_column("conference")
        batch.drop_column("color_id")
        batch.drop_column("visibility")
        batch.drop_column("transparency")
