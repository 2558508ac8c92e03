"""The read model of expanded lists (migration 0015): Core tables, read and written only
by `calsync.store.instances`, `instance_pages` and `instance_upkeep`."""

from __future__ import annotations

import sqlalchemy as sa

from calsync.store.tables.base import Base
from calsync.store.types import UTCDateTime

_API_ID = sa.String(1100).with_variant(sa.String(1100, collation="C"), "postgresql")

event_instances = sa.Table(
    "event_instances",
    Base.metadata,
    sa.Column("owner_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE")),
    sa.Column("api_id", _API_ID),
    sa.Column("user_id", sa.Uuid(), nullable=False),
    sa.Column("calendar_id", sa.Uuid(), nullable=False),
    sa.Column("in_series", sa.Boolean(), nullable=False),
    sa.Column("sort_at", UTCDateTime(), nullable=False),
    sa.Column("end_at", UTCDateTime(), nullable=False),
    sa.Column("all_day", sa.Boolean(), nullable=False),
    sa.Column("long_span", sa.Boolean(), nullable=False),
    sa.Column("original_at", UTCDateTime()),
    sa.Column("original_zone", sa.String(64)),
    sa.Column("exception_id", sa.Uuid()),
    sa.Column("bookkeeping_id", sa.Uuid()),
    sa.Column("category", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("owner_id", "api_id"),
    sa.Index("ix_event_instances_listing", "user_id", "sort_at", "api_id"),
    sa.Index(
        "ix_event_instances_long",
        "user_id",
        "sort_at",
        postgresql_where=sa.text("long_span"),
        sqlite_where=sa.text("long_span"),
    ),
)

instance_incomplete = sa.Table(
    "instance_incomplete",
    Base.metadata,
    sa.Column(
        "owner_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("user_id", sa.Uuid(), nullable=False, index=True),
    # set: the owner's items are held only near (decision HC2); unset: cut short
    sa.Column("held_from", UTCDateTime()),
    sa.Column("held_to", UTCDateTime()),
)

instance_dirty = sa.Table(
    "instance_dirty",
    Base.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("user_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("event_id", sa.Uuid(), nullable=False),
    sa.Column("calendar_id", sa.Uuid(), nullable=False),
    sa.Column("series_ref", sa.String(1024)),
    sa.Column("xact", sa.BigInteger(), index=True),
)

instance_horizon = sa.Table(
    "instance_horizon",
    Base.metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("first_at", UTCDateTime(), nullable=False),
    sa.Column("end_at", UTCDateTime(), nullable=False),
    sa.Column("filled", sa.Boolean(), nullable=False),
)

event_documents = sa.Table(
    "event_documents",
    Base.metadata,
    sa.Column(
        "event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("end_zone", sa.String(64)),
    sa.Column("series_id", sa.String(1024)),
)
"""The API's JSON of each live single, master (its generated instances' template) and
exception, as the read model's pages show it (migration 0016, decisions X1-X3)."""
