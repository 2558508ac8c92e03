"""Every SQL statement calsync builds once, at import time, compiles on both databases
without the mistakes of `tests.sql_checks` (a column compared with itself, a subquery in
``RETURNING``), which compile silently into wrong SQL.

The statements are found by importing every module of the package and looking at its
module-level values and the class attributes of its classes (and inside tuples, lists
and dicts of them).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import visitors
from sqlalchemy.sql.dml import UpdateBase

import calsync
from tests.sql_checks import sql_mistakes

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


def _modules() -> Iterator[Any]:
    for info in pkgutil.walk_packages(calsync.__path__, prefix="calsync."):
        yield importlib.import_module(info.name)


def _values(value: Any, depth: int = 0) -> Iterator[Any]:
    yield value
    if depth < 2 and isinstance(value, tuple | list):
        for item in value:
            yield from _values(item, depth + 1)
    elif depth < 2 and isinstance(value, dict):
        for item in value.values():
            yield from _values(item, depth + 1)


def statements_built_at_import() -> dict[str, sa.ClauseElement]:
    """Every SQLAlchemy statement (or expression) held by a module or class of calsync."""
    found: dict[str, sa.ClauseElement] = {}
    for module in _modules():
        holders: list[tuple[str, dict[str, Any]]] = [(module.__name__, vars(module))]
        holders += [
            (f"{module.__name__}.{name}", vars(value))
            for name, value in vars(module).items()
            if isinstance(value, type) and value.__module__ == module.__name__
        ]
        for prefix, namespace in holders:
            for name, value in namespace.items():
                for item in _values(value):
                    if isinstance(item, sa.ClauseElement) and not isinstance(
                        item, sa.Table | sa.Column
                    ):
                        found.setdefault(f"{prefix}.{name}", item)
    return found


def mistakes(statement: sa.ClauseElement, dialect: sa.Dialect) -> list[str]:
    """What is wrong with `statement` compiled for `dialect` (nothing: an empty list)."""
    found = sql_mistakes(str(statement.compile(dialect=dialect)))
    if isinstance(statement, UpdateBase):
        for column in statement._returning:
            if any(isinstance(e, sa.Select) for e in visitors.iterate(column)):
                found.append(f"a subquery in RETURNING: {column}")  # any dialect
    return found


STATEMENTS = statements_built_at_import()


def test_the_search_finds_the_statements_the_code_builds_once() -> None:
    # The pull's end-of-pull statement and the lease's check are built at import time;
    # if the search missed them it would prove nothing.
    assert "calsync.store.pull_leases._FINISH" in STATEMENTS
    assert "calsync.store.pull_leases._HELD" in STATEMENTS
    assert len(STATEMENTS) >= 20


#: Statements that only PostgreSQL runs (their functions assert it), with what SQLite's
#: compiler cannot do.
POSTGRESQL_ONLY = {
    # a DELETE joined to a data-modifying CTE (USING); the records are SQLite's own (RY2)
    "calsync.store.instance_upkeep._REPLACE_DOCUMENT": "multiple-table criteria within DELETE",
}


@pytest.mark.parametrize(
    ("name", "dialect"),
    [
        (name, dialect)
        for name in sorted(STATEMENTS)
        for dialect in DIALECTS
        if not (dialect == "sqlite" and name in POSTGRESQL_ONLY)
    ],
)
def test_statement_compiles_without_mistakes(name: str, dialect: str) -> None:
    assert mistakes(STATEMENTS[name], DIALECTS[dialect]) == []


@pytest.mark.parametrize("name", sorted(POSTGRESQL_ONLY))
def test_a_statement_listed_as_postgresql_only_is_one(name: str) -> None:
    # the list stays true: each is still built once and still cannot compile on SQLite
    assert name in STATEMENTS
    with pytest.raises(NotImplementedError, match=POSTGRESQL_ONLY[name]):
        STATEMENTS[name].compile(dialect=DIALECTS["sqlite"])


def _token_in_returning() -> sa.Update:
    """The lease statement as it was: the owner's token read in RETURNING."""
    metadata = sa.MetaData()
    calendars = sa.Table(
        "calendars", metadata, sa.Column("id", sa.Integer), sa.Column("user_id", sa.Integer)
    )
    tokens = sa.Table(
        "oauth_tokens", metadata, sa.Column("user_id", sa.Integer), sa.Column("token", sa.Text)
    )
    token = (
        sa.select(tokens.c.token).where(tokens.c.user_id == calendars.c.user_id).scalar_subquery()
    )
    return (
        sa.update(calendars)
        .where(calendars.c.id == 1)
        .values(user_id=calendars.c.user_id)
        .returning(calendars.c.id, token.label("token"))
    )


def test_the_checks_catch_the_token_mix_up() -> None:
    # Given the statement that read the first user's token for everyone on SQLite
    statement = _token_in_returning()
    # Then SQLite's compiled form compares user_id with itself, and both dialects
    # report the subquery in RETURNING
    on_sqlite = mistakes(statement, DIALECTS["sqlite"])
    assert any("compares user_id with itself" in m for m in on_sqlite), on_sqlite
    assert any("subquery in RETURNING" in m for m in on_sqlite)
    on_postgresql = mistakes(statement, DIALECTS["postgresql"])
    assert not any("itself" in m for m in on_postgresql), on_postgresql
    assert any("subquery in RETURNING" in m for m in on_postgresql)


@pytest.mark.parametrize(
    ("sql", "caught"),
    [
        ("WHERE user_id = user_id AND x = ?", True),
        ("WHERE calendars.id = calendars.id", True),
        ('WHERE "a"."b" != "a"."b"', True),
        ("WHERE oauth_tokens.user_id = calendars.user_id", False),
        ("WHERE id = id_2", False),
        ("SET n = n + 1", False),
        ("WHERE a = a_b", False),
        ("UPDATE t SET a=? RETURNING id, (SELECT x FROM u WHERE y = 1) AS x", True),
        ("UPDATE t SET a=? RETURNING id, a", False),
    ],
)
def test_the_sql_text_checks(sql: str, caught: bool) -> None:
    assert bool(sql_mistakes(sql)) is caught
