"""A generated instance's JSON from its master's stored template (`model_bodies.
stored_body`) writes the instance's start and end as ``isoformat`` writes them in the
instance's zones, in every zone and era: orjson renders the local times (decision IQ2),
except where an offset has seconds (a zone's local mean time), where it would drop them."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from calsync.domain.timezones import iana_zone_names
from calsync.events.model_bodies import stored_body
from calsync.events.read_model import ListedRow
from calsync.events.templates import instance_body, stored_template

OWNER = uuid.UUID("4f2f0c43-52d2-4f4b-9d57-1f1a2cbd5f60")
TEMPLATE = stored_template(
    {
        "id": "x",
        "title": "standup",
        "original_start_time": "x",
        "start_time": "x",
        "end_time": "x",
        "timezone": "x",
        "google_event_id": "x",
    }
)
ZONES = sorted(iana_zone_names())
SECONDS_OFFSETS = ["Africa/Abidjan", "Europe/Amsterdam", "Africa/Monrovia", "America/New_York"]
"""Zones whose offsets had seconds (local mean time; Amsterdam +00:19:32 until 1937,
Monrovia -00:44:30 until 1972)."""


def row(original_at: datetime, end_at: datetime, start_zone: str, end_zone: str) -> ListedRow:
    api_id = f"{OWNER}_{original_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return ListedRow(
        sort_at=original_at,
        api_id=api_id,
        owner_id=OWNER,
        in_series=True,
        original_at=original_at,
        original_zone=start_zone,
        exception_id=None,
        bookkeeping_id=None,
        version=1,
        end_at=end_at,
        owner_body=TEMPLATE,
        end_zone=end_zone,
        series_id="series",
        exception_body=None,
    )


def expected(item: ListedRow) -> bytes:
    """The bytes as the page wrote them before IQ2: ``isoformat`` in each zone."""
    assert item.original_zone is not None
    assert item.original_at is not None
    assert item.end_zone is not None
    start = item.original_at.astimezone(zoneinfo.ZoneInfo(item.original_zone)).isoformat()
    end = item.end_at.astimezone(zoneinfo.ZoneInfo(item.end_zone)).isoformat()
    suffix = item.api_id[len(str(OWNER)) :]
    return instance_body(TEMPLATE, (item.api_id, start, start, end, "series" + suffix))


def test_every_zone_in_every_era_gives_isoformat_s_bytes() -> None:
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    instants = [datetime(year, 7, 1, 12, 0, 0, tzinfo=UTC) for year in range(1850, 2040, 7)]
    instants += [datetime(2026, 3, 8, 6, 59, 59, 999999, tzinfo=UTC), datetime(1, 1, 2, tzinfo=UTC)]
    for name in ZONES:
        for at in instants:
            item = row(at, at + timedelta(minutes=30, microseconds=1), name, "Asia/Kolkata")
            assert stored_body(item, zones) == expected(item), (name, at)


def test_offsets_with_seconds_keep_their_seconds() -> None:
    # Amsterdam's summer offset in 1930 was +01:19:32 (its winter one +00:19:32)
    at = datetime(1930, 7, 1, 10, 0, tzinfo=UTC)
    item = row(at, at + timedelta(hours=1), "Europe/Amsterdam", "Africa/Monrovia")
    body = stored_body(item, {})
    assert body is not None
    assert b'"start_time":"1930-07-01T11:19:32+01:19:32"' in body
    assert b'"end_time":"1930-07-01T10:15:30-00:44:30"' in body
    assert body == expected(item)


@given(
    at=st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2200, 1, 1)),
    length=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    start_zone=st.sampled_from(ZONES),
    end_zone=st.sampled_from(SECONDS_OFFSETS + ZONES),
)
def test_any_instant_in_any_two_zones_gives_isoformat_s_bytes(
    at: datetime, length: timedelta, start_zone: str, end_zone: str
) -> None:
    start = at.replace(tzinfo=UTC)
    item = row(start, start + length, start_zone, end_zone)
    assert stored_body(item, {}) == expected(item)


def test_the_repeated_hour_after_a_clock_goes_back_keeps_its_offset() -> None:
    # A local time that happens twice (fold 1: the second time, after the clock went
    # back) renders the offset of the instant, as isoformat does (review RZ5): the
    # northern autumn (Europe 27 Oct, America 3 Nov 2024) and the southern one (New
    # Zealand, Australia, Chile 6-7 Apr 2024), every zone, each half hour around them.
    windows = [
        (datetime(2024, 10, 26, 22, 30, tzinfo=UTC), 6),
        (datetime(2024, 11, 3, 4, 30, tzinfo=UTC), 7),
        (datetime(2024, 4, 6, 12, 30, tzinfo=UTC), 17),
    ]
    instants = [first + timedelta(hours=h) for first, hours in windows for h in range(hours)]
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    repeated = 0
    for name in ZONES:
        for at in instants:
            item = row(at, at + timedelta(hours=1), name, name)
            repeated += at.astimezone(zoneinfo.ZoneInfo(name)).fold
            assert stored_body(item, zones) == expected(item), (name, at)
    assert repeated > 50  # the second pass through a repeated hour was rendered
