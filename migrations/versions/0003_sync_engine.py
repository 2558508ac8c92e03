"""sync engine: sync leases, coalescing, pauses, local versions, idempotency

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 11:14:41.981612
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column(
            "response_body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"], unique=False
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint", sa.String(length=2048), nullable=False),
        sa.Column("p256dh", sa.String(length=255), nullable=False),
        sa.Column("auth", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_push_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint(
            "user_id", "endpoint", name=op.f("uq_push_subscriptions_user_id_endpoint")
        ),
    )
    op.add_column("calendars", sa.Column("sync_lease_owner", sa.String(length=128), nullable=True))
    op.add_column(
        "calendars", sa.Column("sync_lease_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("events", sa.Column("end_timezone", sa.String(length=64), nullable=True))
    op.add_column(
        "events", sa.Column("original_start_timezone", sa.String(length=64), nullable=True)
    )
    op.add_column("calendars", sa.Column("last_pull_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("events", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column(
        "users", sa.Column("writes_paused_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("users", "writes_paused_until")
    op.drop_column("events", "version")
    op.drop_column("events", "original_start_timezone")
    op.drop_column("events", "end_timezone")
    op.drop_column("calendars", "last_pull_at")
    op.drop_column("calendars", "sync_lease_until")
    op.drop_column("calendars", "sync_lease_owner")
    op.drop_table("push_subscriptions")
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
