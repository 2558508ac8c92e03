"""The three-way merge table, per policy."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calsync.domain.conflicts import ConflictPolicy, MergeResult, Side, merge
from calsync.domain.models import Attendee, Event, EventTime, ResponseStatus

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
BASE = Event(
    title="Planning",
    description="agenda",
    start=EventTime.at(datetime(2024, 5, 6, 9), "Europe/Berlin"),
    end=EventTime.at(datetime(2024, 5, 6, 10), "Europe/Berlin"),
    attendees=(Attendee(email="a@example.com"), Attendee(email="b@example.com")),
    metadata={"matter": "42"},
    recurrence=("RRULE:FREQ=WEEKLY", "EXDATE:20240513T070000Z"),
    calsync_id="local-1",
    provider_event_id="g1",
    etag='"1"',
)


def changed(event: Event, **changes: object) -> Event:
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


def resolution_of(result: MergeResult, unit: str) -> Side | None:
    return next((r.chosen for r in result.resolutions if r.field == unit), None)


@pytest.mark.parametrize("policy", list(ConflictPolicy))
def test_nothing_changed_is_no_resolution(policy: ConflictPolicy) -> None:
    result = merge(BASE, BASE, BASE, policy=policy)
    assert result.resolutions == ()
    assert not result.manual_conflict
    assert result.merged == BASE


@pytest.mark.parametrize("policy", list(ConflictPolicy))
def test_one_sided_changes_are_taken_whatever_the_policy(policy: ConflictPolicy) -> None:
    local = changed(BASE, title="Planning (moved room)")
    remote = changed(BASE, description="new agenda", etag='"2"')
    result = merge(BASE, local, remote, policy=policy)
    assert result.merged.title == "Planning (moved room)"
    assert result.merged.description == "new agenda"
    assert resolution_of(result, "title") == Side.LOCAL
    assert resolution_of(result, "description") == Side.REMOTE
    assert not result.conflicts
    assert not result.manual_conflict
    assert result.merged.etag == '"2"'  # provider fields come from remote
    assert result.local_changed
    assert result.remote_changed


def test_same_change_on_both_sides_is_no_conflict() -> None:
    both = changed(BASE, location="Room 4")
    result = merge(BASE, both, both, policy=ConflictPolicy.MANUAL)
    assert resolution_of(result, "location") == Side.BOTH
    assert not result.manual_conflict
    assert not result.local_changed
    assert not result.remote_changed


@pytest.mark.parametrize(
    ("policy", "local_updated", "remote_updated", "winner"),
    [
        (ConflictPolicy.LAST_UPDATED_WINS, T0 + timedelta(seconds=1), T0, Side.LOCAL),
        (ConflictPolicy.LAST_UPDATED_WINS, T0, T0 + timedelta(seconds=1), Side.REMOTE),
        (ConflictPolicy.LAST_UPDATED_WINS, T0, T0, Side.REMOTE),
        (ConflictPolicy.LAST_UPDATED_WINS, None, T0, Side.REMOTE),
        (ConflictPolicy.LAST_UPDATED_WINS, T0, None, Side.LOCAL),
        (ConflictPolicy.LAST_UPDATED_WINS, None, None, Side.REMOTE),
        (ConflictPolicy.REMOTE_WINS, T0 + timedelta(days=1), T0, Side.REMOTE),
        (ConflictPolicy.LOCAL_WINS, T0, T0 + timedelta(days=1), Side.LOCAL),
        (ConflictPolicy.MANUAL, T0, T0 + timedelta(days=1), Side.LOCAL),
    ],
)
def test_conflicting_changes_follow_the_policy(
    policy: ConflictPolicy,
    local_updated: datetime | None,
    remote_updated: datetime | None,
    winner: Side,
) -> None:
    local = changed(BASE, title="local title")
    remote = changed(BASE, title="remote title")
    result = merge(
        BASE,
        local,
        remote,
        policy=policy,
        local_updated=local_updated,
        remote_updated=remote_updated,
    )
    assert result.merged.title == ("local title" if winner == Side.LOCAL else "remote title")
    (conflict,) = result.conflicts
    assert (conflict.field, conflict.base, conflict.local, conflict.remote) == (
        "title",
        "Planning",
        "local title",
        "remote title",
    )
    assert conflict.chosen == winner
    assert conflict.policy == policy
    assert result.manual_conflict == (policy == ConflictPolicy.MANUAL)


def test_last_updated_wins_reads_the_events_updated_fields_by_default() -> None:
    local = changed(BASE, title="local", updated=T0 + timedelta(minutes=5))
    remote = changed(BASE, title="remote", updated=T0)
    result = merge(BASE, local, remote, policy=ConflictPolicy.LAST_UPDATED_WINS)
    assert result.merged.title == "local"


def test_time_fields_merge_as_one_unit() -> None:
    # Given local moved the start earlier and remote made the event shorter
    local = changed(BASE, start=EventTime.at(datetime(2024, 5, 6, 8), "Europe/Berlin"))
    remote = changed(BASE, end=EventTime.at(datetime(2024, 5, 6, 9, 30), "Europe/Berlin"))
    # When merged with remote winning conflicts
    result = merge(BASE, local, remote, policy=ConflictPolicy.REMOTE_WINS)
    # Then it is one conflict on "when", and start and end come from the same side
    (conflict,) = result.conflicts
    assert conflict.field == "when"
    assert (result.merged.start, result.merged.end) == (remote.start, remote.end)


@pytest.mark.parametrize("policy", list(ConflictPolicy))
def test_the_zone_of_an_all_day_event_is_no_change_of_its_dates(policy: ConflictPolicy) -> None:
    # Given an all-day event as calsync wrote it (no zone) and moved it a day locally,
    # while Google's copy, read in the calendar's zone, changed another field later
    day = changed(
        BASE,
        start=EventTime.on(date(2031, 4, 16)),
        end=EventTime.on(date(2031, 4, 17)),
        timezone=None,
        updated=T0,
    )
    local = changed(day, start=EventTime.on(date(2031, 4, 15)), end=EventTime.on(date(2031, 4, 16)))
    remote = changed(day, timezone="UTC", description="later", updated=T0 + timedelta(minutes=5))
    # When merged
    result = merge(day, local, remote, policy=policy)
    # Then the dates changed on one side only: the local move stands, whatever the policy
    assert resolution_of(result, "when") == Side.LOCAL
    assert (result.merged.start, result.merged.end) == (local.start, local.end)
    assert result.merged.description == "later"
    assert not result.conflicts
    # and a zone alone, without other dates, is no change at all
    assert resolution_of(merge(day, day, remote, policy=policy), "when") is None


def test_attendee_order_and_email_case_are_not_changes() -> None:
    local = changed(
        BASE, attendees=(Attendee(email="B@Example.com"), Attendee(email="a@example.com"))
    )
    result = merge(BASE, local, BASE, policy=ConflictPolicy.MANUAL)
    assert result.resolutions == ()


def test_attendee_response_is_a_change_of_the_attendees() -> None:
    remote = changed(
        BASE,
        attendees=(
            Attendee(email="a@example.com", response_status=ResponseStatus.ACCEPTED),
            Attendee(email="b@example.com"),
        ),
    )
    local = changed(BASE, attendees=(Attendee(email="a@example.com"),))
    result = merge(BASE, local, remote, policy=ConflictPolicy.REMOTE_WINS)
    assert [r.field for r in result.conflicts] == ["attendees"]
    assert result.merged.attendees == remote.attendees


def test_recurrence_line_order_and_metadata_order_are_not_changes() -> None:
    local = changed(BASE, recurrence=tuple(reversed(BASE.recurrence)), metadata={"matter": "42"})
    assert merge(BASE, local, BASE, policy=ConflictPolicy.MANUAL).resolutions == ()


def test_without_a_base_every_difference_is_a_conflict() -> None:
    local = changed(BASE, title="L")
    result = merge(None, local, BASE, policy=ConflictPolicy.LOCAL_WINS)
    assert [(r.field, r.chosen) for r in result.conflicts] == [("title", Side.LOCAL)]
    assert result.merged.title == "L"


def test_merged_keeps_local_identity() -> None:
    remote = changed(BASE, calsync_id=None, etag='"9"', sequence=3)
    result = merge(BASE, BASE, remote, policy=ConflictPolicy.MANUAL)
    assert (result.merged.calsync_id, result.merged.etag, result.merged.sequence) == (
        "local-1",
        '"9"',
        3,
    )


TITLES = st.sampled_from(["a", "b", "c"])


@given(base=TITLES, local=TITLES, remote=TITLES, policy=st.sampled_from(list(ConflictPolicy)))
def test_merge_table_for_one_field(
    base: str, local: str, remote: str, policy: ConflictPolicy
) -> None:
    result = merge(
        changed(BASE, title=base),
        changed(BASE, title=local),
        changed(BASE, title=remote),
        policy=policy,
        local_updated=T0,
        remote_updated=T0,
    )
    if local == remote:
        expected = local
    elif local == base:
        expected = remote
    elif remote == base:
        expected = local
    else:
        expected = local if policy in (ConflictPolicy.LOCAL_WINS, ConflictPolicy.MANUAL) else remote
    assert result.merged.title == expected
    conflict = local != remote and base not in (local, remote)
    assert bool(result.conflicts) == conflict
    assert result.manual_conflict == (conflict and policy == ConflictPolicy.MANUAL)
