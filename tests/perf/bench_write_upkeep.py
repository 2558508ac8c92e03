"""An API write's read model upkeep: in its transaction, or after its commit (decision Z2).

Run: ``PYTHONPATH=. .venv/bin/python tests/perf/bench_write_upkeep.py [--db postgresql|sqlite]
[--events 4000] [--series 300] [--writes 30]``; prints figures, asserts nothing.

One user with ``--events`` stored events, ``--series`` of them series (the seed of
``bench_events``), the model filled. Each round retitles one series through
``PUT /events/{id}`` (in-process ASGI app, TestClient), then lists its month
(``expand=true``, every page of 200), as a client that just wrote reads again:

- *inline*: the request re-expands its changes before it commits (what calsync does);
- *after the commit*: the same request with the upkeep left to the job (`in_request`
  answering false, as for a pull): the write, the month listed before the job ran (by
  expansion: the user's lists decline while a record is left), and the job's time.

PostgreSQL from ``CALSYNC_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``), a
scratch database created and dropped.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl
from calsync.events import read_model, upkeep
from calsync.store.migrate import upgrade
from calsync.sync import calendar_list
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.google_users import connect_google_user
from tests.perf.bench_events import seed, settle
from tests.perf.scratch import scratch_database

MONTH = {"start_date": "2030-06-01", "end_date": "2030-06-30", "expand": "true", "limit": "200"}


def timed(run: Callable[[], Any]) -> float:
    began = time.perf_counter()
    run()
    return (time.perf_counter() - began) * 1000


def month(client: TestClient, headers: dict[str, str]) -> None:
    query = dict(MONTH)
    while True:
        body = client.get("/events", params=query, headers=headers).json()
        if body["next_cursor"] is None:
            return
        query["cursor"] = body["next_cursor"]


def rounds(
    client: TestClient,
    headers: dict[str, str],
    masters: list[str],
    label: str,
    writes: int,
    job: Callable[[], Any] | None,
) -> tuple[list[float], list[float], list[float]]:
    """`writes` rounds of a series retitled then its month listed (then `job`): the
    milliseconds of each step."""
    written, listed, ran = [], [], []
    for n in range(writes):
        target, body = masters[n % len(masters)], {"title": f"{label} {n}"}
        began = time.perf_counter()
        client.patch(f"/events/{target}", json=body, headers=headers)
        written.append((time.perf_counter() - began) * 1000)
        listed.append(timed(lambda: month(client, headers)))
        if job is not None:
            ran.append(timed(job))
    return written, listed, ran


def line(what: str, values: list[float]) -> None:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(f"{what}: p50 {statistics.median(values):.1f} ms, p95 {p95:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--writes", type=int, default=30)
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
            api_rate_limit_per_minute=1_000_000,
            address_rate_limit_per_minute=1_000_000,
        )
        services = bootstrap(settings)
        upgrade(services.engine)
        email = "bench@example.com"
        account, _ = connect_google_user(
            services, control, email, expires_at=datetime.now(UTC) + timedelta(days=1)
        )
        calendar_list.sync_calendar_list(services, account.id)
        with services.sessions() as session:
            found = session.scalar(sa.text("SELECT id FROM calendars"))
        calendar_id = found if isinstance(found, uuid.UUID) else uuid.UUID(str(found))
        seed(services, account.id, calendar_id, args.events, args.series)
        read_model.fill(services.sessions, datetime(2030, 6, 15, tzinfo=UTC))
        settle(services.engine)
        token = issue_token(services.jwt, subject=str(account.id), email=email, role="user")
        headers = {"Authorization": f"Bearer {token}"}
        with services.sessions() as session:
            masters = [
                str(i)
                for i in session.scalars(
                    sa.text("SELECT id FROM events WHERE is_recurring ORDER BY id")
                )
            ]
        print(f"db={args.db} events={args.events} series={args.series} writes={args.writes}")
        with TestClient(create_app(services)) as client:
            month(client, headers)
            write, listed, _ = rounds(client, headers, masters, "inline", args.writes, None)
            line("inline: PATCH of a series", write)
            line("inline: its month listed right after (from the model)", listed)
            real = upkeep.in_request
            upkeep.in_request = lambda: False  # type: ignore[assignment]
            try:
                write, listed, job = rounds(
                    client,
                    headers,
                    masters,
                    "after",
                    args.writes,
                    lambda: upkeep.catch_up(services.sessions),
                )
            finally:
                upkeep.in_request = real  # type: ignore[assignment]
            line("after the commit: PATCH of a series", write)
            line("after the commit: its month listed before the job ran (expanded)", listed)
            line("after the commit: the job", job)
            print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
        services.close()


if __name__ == "__main__":
    main()
