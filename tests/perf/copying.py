"""Bulk rows for the benchmarks that fill PostgreSQL directly (bench_scale, bench_sweeps):
COPY, and the columns both write for users, their tokens, calendars and channels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

USER_COLUMNS = ("id", "email", "role", "status", "timezone", "created_at", "updated_at")
OAUTH_TOKEN_COLUMNS = (
    "id",
    "user_id",
    "provider",
    "access_token_encrypted",
    "refresh_token_encrypted",
    "scopes",
    "expires_at",
    "status",
    "created_at",
    "updated_at",
)
CALENDAR_COLUMNS = (
    "id",
    "user_id",
    "provider",
    "provider_calendar_id",
    "summary",
    "timezone",
    "access_role",
    "is_primary",
    "selected",
    "last_synced_at",
    "last_sync_status",
    "dirty",
    "poll_only",
    "sync_token",
    "created_at",
    "updated_at",
)
WATCH_CHANNEL_COLUMNS = (
    "id",
    "user_id",
    "calendar_id",
    "kind",
    "resource_id",
    "expires_at",
    "status",
    "created_at",
    "updated_at",
)


def copy_rows(
    engine: sa.Engine, table: str, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]]
) -> int:
    """Write `rows` into `table` with COPY; returns how many."""
    raw = engine.raw_connection()
    count = 0
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        raw.commit()
    finally:
        raw.close()
    return count
