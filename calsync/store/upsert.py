"""``INSERT ... ON CONFLICT DO UPDATE`` for the two dialects calsync runs on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def upsert(
    session: Session,
    table: sa.Table,
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """Insert ``values`` or, when a row with the same ``key`` columns exists, update it.

    ``update`` names the columns to overwrite (default: every non-key column given). Atomic
    on both PostgreSQL and SQLite, so concurrent workers never fail on a duplicate key.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.values(**values)
    columns = update if update is not None else [c for c in values if c not in key]
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={column: statement.excluded[column] for column in columns},
    )
    session.execute(statement)
