"""series held near today first, the rest after

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 01:20:00.000000

The read model's upkeep after the write expands an owner over a *near* range of the
horizon first and the rest later (decisions HC2-HC4). ``instance_incomplete`` says so:
a row with ``held_from``/``held_to`` means the owner's items are held only for
instances overlapping ``[held_from, held_to)`` (a page whose window lies inside that
range is read from the model; any other is expanded as before); a row without them is
what it was (a series a bound cut short: every list of its user is expanded).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from calsync.store.types import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("instance_incomplete", sa.Column("held_from", UTCDateTime(), nullable=True))
    op.add_column("instance_incomplete", sa.Column("held_to", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM instance_incomplete WHERE held_from IS NOT NULL")
    with op.batch_alter_table("instance_incomplete") as batch:
        batch.drop_column("held_to")
        batch.drop_column("held_from")
