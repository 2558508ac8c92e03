"""What is keyed by row versions is kept per PostgreSQL database (`PerDatabase`): one
object per engine, made once; none on SQLite, which has no row versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from calsync.store.db import make_engine
from calsync.store.row_cache import EventCache, PerDatabase, cache_of
from calsync.web.list_cache import memos_of

pytestmark = pytest.mark.integration


def test_each_postgresql_engine_has_its_own_and_sqlite_has_none(
    pg_url: str, tmp_path: Path
) -> None:
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    registry = PerDatabase(make)
    first, second = make_engine(pg_url), make_engine(pg_url)
    sqlite = make_engine(f"sqlite:///{tmp_path / 'calsync.db'}")
    try:
        with Session(first) as a, Session(first) as again, Session(second) as b:
            assert registry.of(a) is registry.of(again) is made[0]
            assert registry.of(b) is made[1]
            assert len(made) == 2
            assert isinstance(cache_of(a), EventCache)
            assert cache_of(a) is not cache_of(b)
            assert memos_of(a) is memos_of(again) is not memos_of(b)
        with Session(sqlite) as local:
            assert registry.of(local) is None
            assert cache_of(local) is None
            assert memos_of(local) is None
        assert len(made) == 2
    finally:
        for engine in (first, second, sqlite):
            engine.dispose()
