"""The server's cost of a full sync's bulk write with the read model on, under two
schemas side by side: prints figures only (decision HJ2).

Run: ``.venv/bin/python -u -m tests.perf.bench_bulk_write`` (PostgreSQL; two scratch
databases ``bulkwrite_bw_<revision>``, dropped and made anew). Each is migrated to one of
``--schemas`` (default ``0017 head``: the row triggers of migrations 0015/0016 against
the statement triggers of 0018), given a user, a calendar and the read model's horizon,
and ``ANALYZE``d. Then, ``--rounds`` times, alternating the schemas: the user's rows are
deleted (not timed), ``--events`` rows are written as a full sync writes them
(`insert_events`: one binary ``COPY``; then `EventAttendee` rows for a third of them in
one ``INSERT``), committed, timed (wall, and this process's CPU), and the change records
the write left are counted. The medians per schema, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.store.db import make_engine
from calsync.store.event_bulk_writes import insert_events
from calsync.store.migrate import upgrade
from calsync.store.tables import Event, EventAttendee, instance_dirty, instance_horizon
from tests.owners import add_owner
from tests.perf.bench_sync import fresh_database

START = datetime(2026, 1, 1, 9, tzinfo=UTC)


def prepare(revision: str) -> tuple[sessionmaker[Session], tuple[uuid.UUID, uuid.UUID]]:
    name = "bulkwrite_bw_" + revision.replace("-", "_")
    engine = make_engine(fresh_database(name))
    upgrade(engine, revision)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions.begin() as session:
        owner = add_owner(session)
        end = START + timedelta(days=400)
        horizon = {"id": 1, "first_at": START, "end_at": end, "filled": True}
        session.execute(sa.insert(instance_horizon).values(horizon))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("ANALYZE"))
    return sessions, owner


def rows(owner: tuple[uuid.UUID, uuid.UUID], count: int) -> list[dict[str, Any]]:
    user_id, calendar_id = owner
    made = []
    for n in range(count):
        start = START + timedelta(hours=7 * n)
        made.append(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "calendar_id": calendar_id,
                "google_event_id": f"g{n:06d}{uuid.uuid4().hex[:8]}",
                "title": f"event {n}",
                "description": "notes " * 8,
                "start_time": start,
                "end_time": start + timedelta(hours=1),
                "sync_state": "synced",
                "etag": f'"{n}"',
            }
        )
    return made


def write(
    sessions: sessionmaker[Session], owner: tuple[uuid.UUID, uuid.UUID], count: int
) -> tuple[float, float, int]:
    """One full sync's write: (wall s, CPU s, change records left)."""
    with sessions.begin() as session:
        session.execute(sa.delete(Event).where(Event.user_id == owner[0]))
        session.execute(sa.delete(instance_dirty))
    made = rows(owner, count)
    guests = [
        {"id": uuid.uuid4(), "event_id": r["id"], "email": f"g{n}@example.com"}
        for n, r in enumerate(made)
        if n % 3 == 0
    ]
    wall, cpu = time.perf_counter(), time.process_time()
    with sessions.begin() as session:
        insert_events(session, made)
        session.execute(sa.insert(EventAttendee), guests)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with sessions() as session:
        left = session.scalar(sa.select(sa.func.count()).select_from(instance_dirty)) or 0
    return wall, cpu, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--schemas", nargs="+", default=["0017", "head"])
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    prepared = {schema: prepare(schema) for schema in args.schemas}
    found: dict[str, list[tuple[float, float, int]]] = {s: [] for s in args.schemas}
    for _ in range(args.rounds):
        for schema, (sessions, owner) in prepared.items():
            found[schema].append(write(sessions, owner, args.events))
    for schema, runs in found.items():
        walls = [w * 1000 for w, _, _ in runs]
        cpus = [c * 1000 for _, c, _ in runs]
        print(
            f"schema {schema}: {args.events:,} events + {len(range(0, args.events, 3)):,} "
            f"attendees, wall median {statistics.median(walls):,.0f} ms "
            f"(min {min(walls):,.0f}, max {max(walls):,.0f}), client CPU median "
            f"{statistics.median(cpus):,.0f} ms, {runs[-1][2]:,} change records",
            flush=True,
        )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for sessions, _ in prepared.values():
        bind = sessions.kw["bind"]
        bind.dispose()


if __name__ == "__main__":
    main()
