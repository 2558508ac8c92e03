"""Per-process memos of what expanded lists compute from rows, keyed by row versions.

Two memos sit on top of the row cache (`calsync.store.row_cache`, decision E16) and use
the same versions, the ``xmin``-based text PostgreSQL changes whenever an event row or
one of its attendee rows changes:

- **series**: a master's outline (`SeriesOutline`) by (id, version, whether it may have
  exceptions), and for a series without exceptions the page items it contributes to
  the last `SERIES_WINDOWS` windows asked for (its instance starts and ids; the window
  with its bounds' zones): those depend on the master row alone.
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
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from sqlalchemy.orm import Session

from calsync.store.event_queries import SeriesOutline
from calsync.store.row_cache import PerDatabase

__all__ = [
    "BODY_OVERHEAD",
    "MAX_BODY_BYTES",
    "MAX_SERIES_ITEMS",
    "SERIES_WINDOWS",
    "BoundedMemo",
    "ListMemos",
    "SeriesEntry",
    "Window",
    "memos_of",
    "series_key",
]

MAX_SERIES_ITEMS: Final = 50_000
"""Series outlines and items kept per database and process, counted together (some 250
bytes each: ~12 MB)."""

SERIES_WINDOWS: Final = 16
"""Windows whose items a series entry keeps: a client moving between months, weeks and
days asks for several (a first page expands the start of a window first, then maybe all
of it); `MAX_SERIES_ITEMS` bounds what they hold together."""

MAX_BODY_BYTES: Final = 16 * 1024 * 1024
"""Item bodies kept per database and process, each counted as its JSON bytes plus
`BODY_OVERHEAD` (~17,000 plain instances of some 700 bytes)."""

BODY_OVERHEAD: Final = 288
"""What an item body's entry costs besides its JSON: the bytes object, the key tuple and
its two strings (API id and version), measured at about 280 bytes."""

V = TypeVar("V")


class BoundedMemo(Generic[V]):
    """A thread-safe map of sized entries (`size_of`) holding at most `budget`, which
    keeps what is used: an approximate LRU in two generations of plain dicts (a hit costs
    one dict lookup, no reordering).

    New and used entries go to the young generation; when an entry would take the young
    generation's sizes past half the budget, the old generation is dropped and the young
    one becomes the old one. A hit in the old generation moves the entry back to the young
    one. So an entry used at least once in every half budget's worth of insertions is never
    dropped, and one unused for a whole budget's worth always is. An entry larger than half
    the budget is not kept."""

    def __init__(self, budget: int, size_of: Callable[[V], int]) -> None:
        self.budget = budget
        self._half = budget // 2
        self._size_of = size_of
        self._young: dict[Hashable, tuple[V, int]] = {}
        self._old: dict[Hashable, tuple[V, int]] = {}
        self._young_used = 0
        self._old_used = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value put under `key`, or `None`."""
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[Hashable | None]) -> list[V | None]:
        """`get` of each key (`None` keys give `None`), under one acquisition of the lock."""
        found: list[V | None] = []
        with self._lock:
            for key in keys:
                entry = self._young.get(key) if key is not None else None
                if entry is None and key is not None:
                    entry = self._old.pop(key, None)
                    if entry is not None:
                        self._old_used -= entry[1]
                        self._admit(key, entry)
                found.append(entry[0] if entry is not None else None)
        return found

    def put(self, key: Hashable, value: V) -> None:
        """Remember `value` under `key` (replacing what was there)."""
        self.put_many([(key, value)])

    def put_many(self, entries: Sequence[tuple[Hashable, V]]) -> None:
        """`put` of each (key, value), under one acquisition of the lock."""
        sized = [(key, value, self._size_of(value)) for key, value in entries]
        with self._lock:
            for key, value, size in sized:
                if size > self._half:
                    continue
                old = self._old.pop(key, None)
                if old is not None:
                    self._old_used -= old[1]
                self._admit(key, (value, size))

    def _admit(self, key: Hashable, entry: tuple[V, int]) -> None:
        """Put `entry` into the young generation (the lock is held; `key` is not old)."""
        previous = self._young.pop(key, None)
        if previous is not None:
            self._young_used -= previous[1]
        if self._young_used + entry[1] > self._half:
            self._old, self._old_used = self._young, self._young_used
            self._young, self._young_used = {}, 0
        self._young[key] = entry
        self._young_used += entry[1]

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._young, self._old = {}, {}
            self._young_used = self._old_used = 0

    @property
    def used(self) -> int:
        """The sizes of the entries held, added up."""
        return self._young_used + self._old_used

    def __len__(self) -> int:
        return len(self._young) + len(self._old)


def series_key(
    event_id: uuid.UUID, version: str | None, has_exceptions: bool
) -> tuple[int, str | None, bool]:
    """The memo key of a master's (id, version, may have exceptions) (see
    `calsync.store.event_queries.series_keys`): the id as its integer, which hashes and
    compares in C (a `uuid.UUID` does both in Python)."""
    return event_id.int, version, has_exceptions


class Window:
    """A memo key that hashes once: `key` (a tuple of the window's bounds) compares as
    usual, its hash is computed when made, so looking one window up in every series
    entry of a list costs one dict probe each, not one tuple hash each."""

    __slots__ = ("_hash", "key")

    def __init__(self, key: tuple[Hashable, ...]) -> None:
        self.key = key
        self._hash = hash(key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Window) and self._hash == other._hash and self.key == other.key

    def __repr__(self) -> str:
        return f"Window({self.key!r})"


@dataclass(frozen=True, slots=True)
class SeriesEntry:
    """A master's outline as read at one version, and the items of its series in up to
    `SERIES_WINDOWS` windows (each a tuple; the least recently added dropped first).
    Immutable (`windows` is never changed once made): `with_items` makes the entry to put
    in its place."""

    outline: SeriesOutline
    windows: Mapping[Hashable, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, str | None, bool]:
        """What the entry is memoised under: `series_key` of its outline's key."""
        return series_key(self.outline.id, self.outline.version, self.outline.has_exceptions)

    def items(self, window: Hashable) -> tuple[Any, ...] | None:
        """The items kept for `window`, or `None`."""
        return self.windows.get(window)

    def with_items(self, window: Hashable, items: tuple[Any, ...]) -> SeriesEntry:
        """This entry also holding `items` for `window` (the oldest window dropped past
        `SERIES_WINDOWS`)."""
        windows = dict(self.windows)
        windows.pop(window, None)
        windows[window] = items
        while len(windows) > SERIES_WINDOWS:
            del windows[next(iter(windows))]
        return SeriesEntry(self.outline, windows)

    @property
    def size(self) -> int:
        """Its weight in `MAX_SERIES_ITEMS`: one for the outline, one per item."""
        return 1 + sum(len(items) for items in self.windows.values())


@dataclass(frozen=True, slots=True)
class ListMemos:
    """The memos of one database: `series` maps a master's (id, version, may have
    exceptions) to its `SeriesEntry`, `bodies` an item's (API id, version) to its JSON."""

    series: BoundedMemo[SeriesEntry]
    bodies: BoundedMemo[bytes]

    def clear(self) -> None:
        """Forget everything (tests and benchmarks; never needed for correctness)."""
        self.series.clear()
        self.bodies.clear()


def _new_memos() -> ListMemos:
    return ListMemos(
        series=BoundedMemo(MAX_SERIES_ITEMS, lambda entry: entry.size),
        bodies=BoundedMemo(MAX_BODY_BYTES, lambda body: len(body) + BODY_OVERHEAD),
    )


_memos: Final = PerDatabase(_new_memos)


def memos_of(session: Session) -> ListMemos | None:
    """The memos of the database `session` reads (`None` where rows have no versions)."""
    return _memos.of(session)
