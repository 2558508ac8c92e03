"""The pure rules of the mass-deletion guard (`deletion_guard.judge`) and of the audit
schedule (`audit.audit_slot`)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from calsync.sync.audit import audit_slot
from calsync.sync.deletion_guard import MIN_HELD, Hold, HoldOutcome, judge

NOW = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)
RECHECK = timedelta(minutes=15)


def ids(count: int, prefix: str = "e") -> frozenset[str]:
    return frozenset(f"{prefix}{i}" for i in range(count))


@pytest.mark.parametrize(
    ("gone", "known", "held"),
    [
        (MIN_HELD, MIN_HELD, False),  # all of a small calendar: not more than MIN_HELD
        (MIN_HELD + 1, MIN_HELD + 1, True),  # all, and more than MIN_HELD
        (30, 60, False),  # exactly half: not more than half
        (31, 60, True),
        (40, 100, False),
    ],
)
def test_a_listing_is_held_only_above_half_and_above_the_minimum(
    gone: int, known: int, held: bool
) -> None:
    found = judge(
        unlisted=ids(gone), listed=(), known=known, previous=None, now=NOW, recheck_after=RECHECK
    )
    if held:
        assert found.delete == frozenset()
        assert found.hold == Hold(ids(gone), NOW)
        assert found.outcome is HoldOutcome.HELD
    else:
        assert found.delete == ids(gone)
        assert found.hold is None
        assert found.outcome is None


def test_a_second_listing_after_the_delay_that_agrees_applies_the_hold() -> None:
    previous = Hold(ids(30), NOW)
    found = judge(
        unlisted=ids(30) | {"new"},
        listed=("kept",),
        known=32,
        previous=previous,
        now=NOW + RECHECK,
        recheck_after=RECHECK,
    )
    assert found.delete == ids(30) | {"new"}  # "new" alone is below the threshold
    assert found.hold is None
    assert found.outcome is HoldOutcome.APPLIED


def test_a_listing_that_lists_a_held_event_again_releases_the_hold() -> None:
    previous = Hold(ids(30), NOW)
    found = judge(
        unlisted=(),
        listed=ids(30),
        known=30,
        previous=previous,
        now=NOW + RECHECK,
        recheck_after=RECHECK,
    )
    assert found.delete == frozenset()
    assert found.hold is None
    assert found.outcome is HoldOutcome.RELEASED


def test_a_released_hold_does_not_shield_what_is_still_missing_in_bulk() -> None:
    # One of the held events is back, the other 29 are still missing: a new hold
    previous = Hold(ids(30), NOW)
    found = judge(
        unlisted=ids(30) - {"e0"},
        listed=("e0",),
        known=30,
        previous=previous,
        now=NOW + RECHECK,
        recheck_after=RECHECK,
    )
    assert found.delete == frozenset()
    assert found.hold == Hold(ids(30) - {"e0"}, NOW + RECHECK)
    assert found.outcome is HoldOutcome.HELD


def test_a_listing_before_the_delay_decides_nothing_about_the_hold() -> None:
    previous = Hold(ids(30), NOW)
    found = judge(
        unlisted=ids(30) | {"new"},
        listed=(),
        known=31,
        previous=previous,
        now=NOW + RECHECK - timedelta(seconds=1),
        recheck_after=RECHECK,
    )
    assert found.delete == frozenset({"new"})
    assert found.hold == previous
    assert found.outcome is None


def test_audit_slots_fall_once_per_period_at_the_calendars_own_offset() -> None:
    period = timedelta(days=1)
    calendar = uuid.UUID(int=12345)
    first = audit_slot(calendar, NOW, period)
    assert NOW < first <= NOW + period
    assert audit_slot(calendar, first, period) == first + period
    assert audit_slot(calendar, first - timedelta(microseconds=1), period) == first


def test_audit_slots_of_many_calendars_spread_over_the_day() -> None:
    period = timedelta(days=1)
    draw = random.Random(15)
    calendars = [uuid.UUID(int=draw.getrandbits(128), version=4) for _ in range(2400)]
    hours = Counter((audit_slot(c, NOW, period) - NOW).total_seconds() // 3600 for c in calendars)
    assert len(hours) == 24
    assert max(hours.values()) < 2 * 100  # an even spread puts 100 in each hour
