"""Alembic environment: targets calsync's table metadata.

The database comes from, in order: a connection handed over by ``calsync.store.migrate``
(``config.attributes["connection"]``), ``-x url=...`` on the alembic command line, or
``CALSYNC_DATABASE_URL`` (else the embedded SQLite file): no other setting is needed.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from calsync.config import database_url_from_env
from calsync.store.db import make_engine
from calsync.store.tables import Base
from calsync.store.types import UTCDateTime

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render calsync's column types as the plain SQLAlchemy types they store."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    handed_over = context.config.attributes.get("connection")
    if handed_over is not None:
        run(handed_over)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or database_url_from_env()
    engine = make_engine(url)
    with engine.connect() as connection:
        run(connection)
    engine.dispose()


main()
