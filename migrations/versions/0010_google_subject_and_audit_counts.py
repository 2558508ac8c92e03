"""google subject of users, counted audit events

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 10:00:00.000000

``users.google_subject``: the Google account (``sub``) a user is; sign-in matches on it.
Filled from the subject already stored with each user's tokens; when two users hold the
same subject (possible only under the old matching by email), the older user keeps it and
the other is left unbound (it adopts the next subject that signs in with its email).
``audit_events.count`` and ``repeat_key``: repeated anonymous failures are one row with a
count per (action, address, reason, minute).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("google_subject", sa.String(length=255), nullable=True))
    _fill_google_subjects()
    op.create_index(op.f("ix_users_google_subject"), "users", ["google_subject"], unique=True)
    op.add_column(
        "audit_events",
        sa.Column("count", sa.Integer(), server_default=sa.text("1"), nullable=False),
    )
    op.add_column("audit_events", sa.Column("repeat_key", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_audit_events_repeat_key"), "audit_events", ["repeat_key"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_repeat_key"), table_name="audit_events")
    op.drop_column("audit_events", "repeat_key")
    op.drop_column("audit_events", "count")
    op.drop_index(op.f("ix_users_google_subject"), table_name="users")
    op.drop_column("users", "google_subject")


def _fill_google_subjects() -> None:
    """Each user takes the subject of their stored tokens, oldest user first."""
    connection = op.get_bind()
    users = sa.table("users", sa.column("id"), sa.column("created_at"), sa.column("google_subject"))
    tokens = sa.table(
        "oauth_tokens", sa.column("user_id"), sa.column("provider"), sa.column("provider_subject")
    )
    rows = connection.execute(
        sa.select(users.c.id, tokens.c.provider_subject)
        .join(tokens, tokens.c.user_id == users.c.id)
        .where(tokens.c.provider == "google", tokens.c.provider_subject.is_not(None))
        .order_by(users.c.created_at, users.c.id)
    ).all()
    taken: set[str] = set()
    for user_id, subject in rows:
        if subject in taken:
            continue
        taken.add(subject)
        connection.execute(
            sa.update(users).where(users.c.id == user_id).values(google_subject=subject)
        )
