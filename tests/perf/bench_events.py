"""Benchmark the events API: prints figures, asserts nothing.

Run: ``PYTHONPATH=. python tests/perf/bench_events.py [--db postgresql|sqlite] [--read-model]
[--events 10000] [--series 400] [--requests 200] [--posts 100] [--profile 20]``

Figures:
- ``GET /events?expand=true`` for a one-month window (limit 200, the page cap) over N
  stored events of which S are recurring series (weekly, daily, monthly; with and
  without end), through the whole ASGI app in-process (auth, query, expansion, JSON):
  the same request repeated (the list memos and the row cache that made it cheaper
  were removed with the read model on, decisions X7; ``--read-model`` reads it from
  the model);
- POST -> visible in the emulator: ``POST /events``, then the ``push_outbox`` job body
  run at once (as a worker would on receiving the kick), then ``events.get`` from the
  emulator with the real Google client succeeds.

Besides wall-clock percentiles it prints the process CPU time per request (all threads of
this process: app, client and database driver, not the database server), which is less
noisy on a shared machine. ``--profile N`` also runs N list requests' work (query
parsing, the read, the JSON body) in this thread under cProfile and prints the top
functions by cumulative time; ``GET /events/{id}`` of a series instance and the
unexpanded ``GET /events`` list are timed too.

The seeded table is vacuumed and analysed before timing (`settle`), as autovacuum would
do shortly after such a load in production.

PostgreSQL comes from ``CALSYNC_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``);
a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.domain.models import Event, EventTime
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl, build_calendar_service
from calsync.events import read_model
from calsync.events.listing import list_bodies
from calsync.providers.google.ids import google_event_id
from calsync.store.events import event_columns
from calsync.store.migrate import upgrade
from calsync.store.tables import Event as EventRow
from calsync.sync import calendar_list
from calsync.sync.write_back import push_outbox
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from calsync.web.json_body import list_body
from calsync.web.list_query import parse_list_query
from tests.google_users import connect_google_user
from tests.perf.scratch import scratch_database

ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo"]
RULES = [
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
    "RRULE:FREQ=DAILY;COUNT=400",
    "RRULE:FREQ=WEEKLY;INTERVAL=2",
    "RRULE:FREQ=MONTHLY;BYMONTHDAY=15",
    "RRULE:FREQ=DAILY;UNTIL=20320101T000000Z",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    client: TestClient,
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    n: int,
    before_each: Callable[[], None] = lambda: None,
) -> tuple[list[float], float]:
    """Wall-clock milliseconds of `n` GETs, and the process CPU milliseconds per GET
    (`before_each` runs untimed before each)."""
    timings = []
    cpu = 0.0
    for _ in range(n):
        before_each()
        cpu_began = time.process_time()
        began = time.perf_counter()
        response = client.get(url, params=params, headers=headers)
        timings.append((time.perf_counter() - began) * 1000)
        cpu += time.process_time() - cpu_began
        assert response.status_code == 200, response.text
    return timings, cpu * 1000 / n


def month_pages(
    client: TestClient, params: dict[str, str], headers: dict[str, str], label: str
) -> None:
    """Every page of the month, following the cursors: the total and the page p50/max."""
    query = dict(params)
    timings: list[float] = []
    items = 0
    while True:
        began = time.perf_counter()
        answer = client.get("/events", params=query, headers=headers)
        timings.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += len(body["events"])
        if body["next_cursor"] is None:
            break
        query["cursor"] = body["next_cursor"]
    print(
        f"whole month expanded, all pages ({label}): {items} items in {len(timings)} pages, "
        f"{sum(timings):.0f} ms in all, page p50 {statistics.median(timings):.1f} ms, "
        f"max {max(timings):.1f} ms"
    )


def report(what: str, measured: tuple[list[float], float]) -> None:
    timings, cpu = measured
    print(
        f"{what}: p50 {statistics.median(timings):.1f} ms, "
        f"p95 {percentile(timings, 0.95):.1f} ms, CPU {cpu:.1f} ms/request"
    )


def profile_list(services: object, user_id: uuid.UUID, params: dict[str, str], n: int) -> None:
    """cProfile of `n` list requests' work in this thread (parse, read, JSON body), as
    the route does it."""
    profiler = cProfile.Profile()
    began = time.process_time()
    profiler.enable()
    for _ in range(n):
        query = parse_list_query(params, user_zone="UTC")
        with services.sessions() as session:  # type: ignore[attr-defined]
            bodies, cursor = list_bodies(session, user_id, query)
        list_body(bodies, cursor)
    profiler.disable()
    total = time.process_time() - began
    print(f"cProfile: {total * 1000 / n:.1f} ms CPU per list (profiler overhead included)")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def settle(engine: sa.Engine) -> None:
    """What autovacuum would soon do to a table after a bulk load: planner statistics,
    and on PostgreSQL the visibility map that index-only scans need."""
    statement = "VACUUM ANALYZE events" if engine.dialect.name == "postgresql" else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text(statement))


def seed(services: object, user_id: uuid.UUID, calendar_id: uuid.UUID, n: int, series: int) -> None:
    rng = random.Random(7)
    base = datetime(2030, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        zone = rng.choice(ZONES)
        start = base + timedelta(minutes=30 * rng.randrange(0, 2 * 365 * 48))
        recurrence = (rng.choice(RULES),) if i < series else ()
        if recurrence:
            start = datetime(2030, 1, 6, 9, tzinfo=UTC) + timedelta(days=rng.randrange(0, 300))
        event_id = uuid.uuid4()
        event = Event(
            title=f"event {i}",
            category=rng.choice(["work", "home", None]),
            start=EventTime(instant=start, timezone=zone),
            end=EventTime(instant=start + timedelta(minutes=45), timezone=zone),
            recurrence=recurrence,
            provider_event_id=google_event_id(event_id),
            calsync_id=str(event_id),
        )
        rows.append(
            {
                "id": event_id,
                "user_id": user_id,
                "calendar_id": calendar_id,
                "sync_state": "synced",
                **event_columns(event),
            }
        )
    with services.sessions.begin() as session:  # type: ignore[attr-defined]
        for offset in range(0, len(rows), 2000):
            session.execute(sa.insert(EventRow), rows[offset : offset + 2000])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--series", type=int, default=400)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--profile", type=int, default=0, help="profile N list requests")
    parser.add_argument(
        "--read-model",
        action="store_true",
        help="fill the read model of expanded lists first (decisions V1-V6)",
    )
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp())
    with (
        scratch_database(args.db, state) as database_url,
        EmulatorServer() as emulator,
        EmulatorControl(emulator.url) as control,
    ):
        settings = dataclasses.replace(
            Settings.embedded(state),
            database_url=database_url,
            google_api_base=emulator.url,
            google_oauth_base=emulator.url,
            run_emulator=False,
            # The figures are of the handlers; the per-user API limit (600 a minute) would
            # otherwise answer 429 once a fast machine gets through the first 600 GETs.
            api_rate_limit_per_minute=1_000_000,
            address_rate_limit_per_minute=1_000_000,  # and so would the address's
        )
        services = bootstrap(settings)
        upgrade(services.engine)
        email = "bench@example.com"
        account, granted = connect_google_user(
            services, control, email, expires_at=datetime.now(UTC) + timedelta(days=1)
        )
        calendar_list.sync_calendar_list(services, account.id)
        with services.sessions() as session:
            calendar_id = session.scalar(sa.text("SELECT id FROM calendars"))
        calendar_uuid = (
            calendar_id if isinstance(calendar_id, uuid.UUID) else uuid.UUID(str(calendar_id))
        )
        seed(services, account.id, calendar_uuid, args.events, args.series)
        settle(services.engine)
        if args.read_model:
            began = time.perf_counter()
            read_model.fill(services.sessions, datetime(2030, 6, 15, tzinfo=UTC))
            print(f"read model filled in {time.perf_counter() - began:.2f} s")
            settle(services.engine)
        token = issue_token(services.jwt, subject=str(account.id), email=email, role="user")
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(services)) as client:
            params = {
                "start_date": "2030-06-01",
                "end_date": "2030-06-30",
                "expand": "true",
                "limit": "200",
            }
            print(f"db={args.db} events={args.events} series={args.series}")
            month_pages(client, params, headers, "first read")
            month_pages(client, params, headers, "again")
            first = client.get("/events", params=params, headers=headers).json()
            report(
                f"GET /events?expand=true one month (page of {len(first['events'])})",
                measure(client, "/events", params, headers, args.requests),
            )
            plain = {k: v for k, v in params.items() if k != "expand"}
            report(
                "GET /events one month, unexpanded (page of 200)",
                measure(client, "/events", plain, headers, args.requests),
            )
            instance = next(e["id"] for e in first["events"] if e["series_id"] is not None)
            report(
                "GET /events/{id} of a series instance",
                measure(client, f"/events/{instance}", {}, headers, args.requests),
            )
            single = next(e["id"] for e in first["events"] if e["series_id"] is None)
            report(
                "GET /events/{id} of a single event",
                measure(client, f"/events/{single}", {}, headers, args.requests),
            )
            if args.profile:
                profile_list(services, account.id, params, args.profile)
            google = build_calendar_service(emulator.url, granted["access_token"])
            post_timings = []
            for i in range(args.posts):
                began = time.perf_counter()
                created = client.post(
                    "/events",
                    json={
                        "title": f"bench {i}",
                        "start_time": "2031-05-05T10:00:00Z",
                        "end_time": "2031-05-05T11:00:00Z",
                    },
                    headers=headers,
                ).json()
                push_outbox(services, services.providers, uuid.UUID(created["id"]))
                google.events().get(calendarId=email, eventId=created["google_event_id"]).execute()
                post_timings.append((time.perf_counter() - began) * 1000)
            google.close()
            print(
                f"POST -> visible in the emulator: p50 {statistics.median(post_timings):.1f} ms, "
                f"p95 {percentile(post_timings, 0.95):.1f} ms"
            )
        services.close()


if __name__ == "__main__":
    main()
