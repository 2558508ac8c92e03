"""Splitting long id lists for ``IN (...)`` clauses, which databases bound (SQLite: 32,766
parameters; PostgreSQL plans degrade long before its 65,535)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, TypeVar

__all__ = ["IN_CLAUSE_SIZE", "chunks"]

T = TypeVar("T")

#: How many values one ``IN (...)`` clause takes.
IN_CLAUSE_SIZE: Final = 1000


def chunks(values: Sequence[T], size: int = IN_CLAUSE_SIZE) -> Iterator[Sequence[T]]:
    """Consecutive slices of `values` of at most `size` items (none for an empty list)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
