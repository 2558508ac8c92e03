"""Per-process memos of what expanded lists compute from rows, keyed by row versions.

Two memos sit on top of the row cache (`calsync.store.row_cache`, decision E16) and use
the same versions, the ``xmin``-based text PostgreSQL changes whenever an event row or
one of its attendee rows changes:

- **series items**: the page items one series contributes to a window (its instance
  starts and ids), keyed by the master's id and version, whether it had exceptions, and
  the window with its bounds' zones. Only series that had no exception when read are
  memoised (their items depend on the master row alone).
- **item bodies**: the JSON bytes of one listed item (a single event, or a generated
  instance of a series), keyed by its API id and the version of the one row it shows.
  The body of an item that shows an exception row is never memoised.

Both are pure functions of their keys, so an entry can never be served for content
other than its own; an edit makes the old entry unreachable (it ages out of the LRU).
Each database (engine) has its own memos: row versions of two databases are unrelated.
Only read-only transactions may use them (see `calsync.store.row_cache`); SQLite has no
row versions and nothing is memoised there.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_SERIES_ITEMS",
    "BoundedMemo",
    "ListMemos",
    "memos_of",
]

MAX_SERIES_ITEMS: Final = 50_000
"""Series items kept per database and process (some 250 bytes each: ~12 MB)."""

MAX_BODY_BYTES: Final = 16 * 1024 * 1024
"""JSON bytes of item bodies kept per database and process (~25,000 plain instances)."""

V = TypeVar("V")


class BoundedMemo(Generic[V]):
    """A thread-safe LRU map whose entries have a size (`size_of`); the least recently
    used entries are dropped while the sizes add up to more than `budget`. An entry
    larger than the budget is not kept."""

    def __init__(self, budget: int, size_of: Callable[[V], int]) -> None:
        self.budget = budget
        self._size_of = size_of
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value put under `key`, or `None`."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def get_many(self, keys: Sequence[Hashable | None]) -> list[V | None]:
        """`get` of each key (`None` keys give `None`), under one acquisition of the lock."""
        found: list[V | None] = []
        with self._lock:
            entries = self._entries
            for key in keys:
                entry = entries.get(key) if key is not None else None
                if entry is None:
                    found.append(None)
                else:
                    entries.move_to_end(key)
                    found.append(entry[0])
        return found

    def put(self, key: Hashable, value: V) -> None:
        """Remember `value` under `key` (replacing what was there)."""
        size = self._size_of(value)
        if size > self.budget:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._used -= old[1]
            self._entries[key] = (value, size)
            self._used += size
            while self._used > self.budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._used -= dropped

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._used = 0

    @property
    def used(self) -> int:
        """The sizes of the entries held, added up."""
        return self._used

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class ListMemos:
    """The memos of one database: `series` maps a series' memo key to its items (a
    tuple, sized by its length), `bodies` an item's (API id, version) to its JSON."""

    series: BoundedMemo[tuple[Any, ...]]
    bodies: BoundedMemo[bytes]

    def clear(self) -> None:
        """Forget everything (tests and benchmarks; never needed for correctness)."""
        self.series.clear()
        self.bodies.clear()


def _new_memos() -> ListMemos:
    return ListMemos(
        series=BoundedMemo(MAX_SERIES_ITEMS, lambda items: max(1, len(items))),
        bodies=BoundedMemo(MAX_BODY_BYTES, len),
    )


_memos: weakref.WeakKeyDictionary[sa.Engine, ListMemos] = weakref.WeakKeyDictionary()
_memos_lock = threading.Lock()


def memos_of(session: Session) -> ListMemos | None:
    """The memos of the database `session` reads (`None` where rows have no versions)."""
    engine = session.get_bind()
    if not isinstance(engine, sa.Engine) or engine.dialect.name != "postgresql":
        return None
    with _memos_lock:
        memos = _memos.get(engine)
        if memos is None:
            memos = _memos[engine] = _new_memos()
        return memos
