"""The corpus of real-world and hand-written recurring series (tests/data/rfc5545_corpus),
as `Series` values for the differential tests."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from calsync.domain.models import EventTime
from tests.rfc5545_oracle import Series, Window

CORPUS = Path(__file__).parent / "data" / "rfc5545_corpus" / "series.json"


def load() -> list[Series]:
    """Every series of the corpus, labelled with its source and uid."""
    return [_series(record) for record in json.loads(CORPUS.read_text())]


def _series(record: dict[str, Any]) -> Series:
    label = f"{record['source']} {record['uid']}".strip()
    lines = tuple(record["recurrence"])
    if "days" in record:
        day = date.fromisoformat(record["start"])
        return Series(
            EventTime.on(day),
            EventTime.on(day + timedelta(days=record["days"])),
            lines,
            timezone=record["zone"],
            label=label,
        )
    start = EventTime.at(datetime.fromisoformat(record["start"]), record["zone"])
    assert start.instant is not None
    end = EventTime.at(start.instant + timedelta(minutes=record["minutes"]), record["zone"])
    return Series(start, end, lines, label=label)


def windows(series: Series) -> list[Window]:
    """The series' first 400 days (the longest listing calsync allows), and 400 days
    from 2 years later (where rules without COUNT or UNTIL are started part-way)."""
    if series.start.day is not None:
        begin = datetime.combine(series.start.day, datetime.min.time(), tzinfo=UTC)
    else:
        assert series.start.instant is not None
        begin = series.start.instant
    first = begin - timedelta(days=1)
    later = first + timedelta(days=2 * 365 + 17)
    return [Window(first, first + timedelta(days=400)), Window(later, later + timedelta(days=400))]
