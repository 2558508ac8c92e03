"""event types

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 13:30:00.000000

``events.event_type``: Google's ``eventType`` of each event (``default`` for every row
stored before, as Google's own default), fixed at creation; no CHECK, since Google adds
types and a pull must store them (decisions K1). ``events.type_properties``: that type's
properties (``outOfOfficeProperties``, ...) as Google spells them. Rows pulled before
keep ``default`` until Google next lists them changed, or the next audit (which compares
every field) repairs them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column("event_type", sa.String(length=32), server_default="default", nullable=False),
    )
    op.add_column(
        "events",
        sa.Column(
            "type_properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        ),
    )


def downgrade() -> None:
    op.drop_column("events", "type_properties")
    op.drop_column("events", "event_type")
