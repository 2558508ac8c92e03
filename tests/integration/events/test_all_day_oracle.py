"""``GET /events`` lists all-day events as a plain date oracle says, on both databases.

Random all-day singles and series (daily or weekly, COUNT, several days long, in zones
either side of the date line or none) are created through the API for users in four
zones, and random windows (dates, or date-times with any offset) are listed by each
user, expanded and not. The oracle is set arithmetic on dates, independent of the code:
an event covers the days ``first .. end - 1``; a window covers the dates asked for, or
the local dates in the user's zone of the instants from its start to just before its
end; an item is listed when the two share a day. A series master (unexpanded) is listed
when the span from its first day to its last instance's last day shares a day with the
window (or, an upper bound, when its last day is the day before the window). Each
example's events are deleted through the API afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.config import Settings
from calsync.store.tables import User as UserRow
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = pytest.mark.integration

USER_ZONES = ["Pacific/Pago_Pago", "Pacific/Kiritimati", "America/New_York", "Asia/Kolkata"]
SERIES_ZONES = [None, "Pacific/Pago_Pago", "Pacific/Kiritimati", "Europe/Berlin"]
OFFSETS = [timedelta(0), timedelta(hours=14), timedelta(hours=-11), timedelta(hours=5, minutes=30)]
FIRST_DAY = date(2025, 2, 20)  # New York's DST starts on 2025-03-09, inside the range
DAYS = 24
ONE = timedelta(days=1)


@dataclass(frozen=True)
class Spec:
    """An all-day event of user `owner`: a single (`count` 0) or a series."""

    owner: int
    first: date
    length: int
    count: int = 0
    step: int = 1  # days between instances
    zone: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": "x",
            "start_time": self.first.isoformat(),
            "end_time": (self.first + self.length * ONE).isoformat(),
        }
        if self.count:
            freq = "WEEKLY" if self.step % 7 == 0 else "DAILY"
            interval = self.step // 7 if freq == "WEEKLY" else self.step
            body["recurrence"] = [f"RRULE:FREQ={freq};INTERVAL={interval};COUNT={self.count}"]
        if self.zone is not None:
            body["timezone"] = self.zone
        return body

    def starts(self) -> list[date]:
        """The first day of each instance (the single's own)."""
        return [self.first + i * self.step * ONE for i in range(max(self.count, 1))]


def covered(first: date, length: int) -> set[date]:
    return {first + i * ONE for i in range(length)}


specs = st.builds(
    Spec,
    owner=st.integers(0, len(USER_ZONES) - 1),
    first=st.dates(FIRST_DAY, FIRST_DAY + DAYS * ONE),
    length=st.integers(1, 3),
)
series_specs = st.builds(
    Spec,
    owner=st.integers(0, len(USER_ZONES) - 1),
    first=st.dates(FIRST_DAY, FIRST_DAY + DAYS * ONE),
    length=st.integers(1, 3),
    count=st.integers(1, 5),
    step=st.sampled_from([1, 2, 7, 14]),
    zone=st.sampled_from(SERIES_ZONES),
)


@st.composite
def windows(draw: st.DrawFn) -> tuple[dict[str, str], Any]:
    """Query parameters, and what the oracle needs: dates, or aware instants."""
    if draw(st.booleans()):
        first = draw(st.dates(FIRST_DAY - 3 * ONE, FIRST_DAY + (DAYS + 3) * ONE))
        last = first + draw(st.integers(0, 4)) * ONE
        return {"start_date": first.isoformat(), "end_date": last.isoformat()}, (first, last)
    base = datetime.combine(FIRST_DAY - 3 * ONE, datetime.min.time(), tzinfo=UTC)
    start = base + timedelta(minutes=15 * draw(st.integers(0, (DAYS + 6) * 96)))
    end = start + timedelta(minutes=15 * draw(st.integers(1, 4 * 96)))
    offset = timezone(draw(st.sampled_from(OFFSETS)))
    params = {
        "start_date": start.astimezone(offset).isoformat(),
        "end_date": end.astimezone(draw(st.sampled_from([offset, UTC]))).isoformat(),
    }
    return params, (start, end)


def window_days(bounds: Any, user_zone: str) -> set[date]:
    """The oracle's days of a window for a user in `user_zone`."""
    first, last = bounds
    if isinstance(first, datetime):
        local = ZoneInfo(user_zone)
        first = first.astimezone(local).date()
        last = (last - timedelta(microseconds=1)).astimezone(local).date()
    return {first + i * ONE for i in range((last - first).days + 1)}


def expected(
    created: list[tuple[Spec, str]], owner: int, days: set[date], *, expand: bool
) -> tuple[set[str], set[str]]:
    """The API ids the oracle lists for user `owner`: those that must be listed, and
    those that may be. They differ by the masters of an unexpanded list, an upper bound
    by a day at their end: also listed when their last day is the day before the range."""
    must: set[str] = set()
    may: set[str] = set()
    for spec, event_id in created:
        if spec.owner != owner:
            continue
        if not spec.count:
            if covered(spec.first, spec.length) & days:
                must.add(event_id)
        elif not expand:
            span = (spec.starts()[-1] - spec.first).days + spec.length
            if covered(spec.first, span) & days:
                must.add(event_id)
            if covered(spec.first, span + 1) & days:
                may.add(event_id)
        else:
            must |= {
                f"{event_id}_{start:%Y%m%d}"
                for start in spec.starts()
                if covered(start, spec.length) & days
            }
    return must, must | may


@pytest.fixture(params=["embedded", "production"])
def zoned_users(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_google: FakeGoogle,
) -> Iterator[tuple[EventsApp, list[User]]]:
    """One calsync per database, with a user in each of `USER_ZONES`."""
    if request.param == "embedded":
        base = Settings.embedded(tmp_path_factory.mktemp("all-day"))
    else:
        base = request.getfixturevalue("production_settings")
    # Many lists a minute per user: more than the API's per-user rate limit allows
    for app in running(base, fake_google, api_rate_limit_per_minute=1_000_000):
        users = []
        for n, zone_name in enumerate(USER_ZONES):
            user = app.connect(f"u{n}-{uuid.uuid4().hex[:6]}@example.com")
            with app.services.sessions.begin() as session:
                session.execute(
                    sa.update(UserRow).where(UserRow.id == user.id).values(timezone=zone_name)
                )
            users.append(user)
        yield app, users


def listed(app: EventsApp, user: User, params: dict[str, str]) -> list[str]:
    ids: list[str] = []
    query = params | {"limit": "7"}
    while True:
        answer = app.client.get("/events", params=query, headers=user.headers)
        assert answer.status_code == 200, answer.text
        ids += [e["id"] for e in answer.json()["events"]]
        if answer.json()["next_cursor"] is None:
            return ids
        query["cursor"] = answer.json()["next_cursor"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    events=st.lists(st.one_of(specs, series_specs), min_size=1, max_size=8),
    window=windows(),
)
def test_all_day_listing_agrees_with_the_date_oracle(
    zoned_users: tuple[EventsApp, list[User]],
    events: list[Spec],
    window: tuple[dict[str, str], Any],
) -> None:
    app, users = zoned_users
    params, bounds = window
    created = [(spec, app.create(users[spec.owner], spec.body())["id"]) for spec in events]
    try:
        for owner, user in enumerate(users):
            days = window_days(bounds, USER_ZONES[owner])
            for expand in (True, False):
                got = listed(app, user, params | {"expand": str(expand).lower()})
                assert len(got) == len(set(got)), "an item listed twice"
                must, may = expected(created, owner, days, expand=expand)
                assert must <= set(got) <= may, (USER_ZONES[owner], params, expand)
    finally:
        for spec, event_id in created:
            gone = app.client.delete(f"/events/{event_id}", headers=users[spec.owner].headers)
            assert gone.status_code == 204, gone.text
