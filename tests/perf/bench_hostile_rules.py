"""Benchmark the worst recurrence rules anyone can send: prints figures, asserts nothing.

Run: ``.venv/bin/python -m tests.perf.bench_hostile_rules [--db sqlite|postgresql]
[--me-seconds 2]``

For each rule of `RULES` (built to make dateutil look at millions of candidate times, or
to sit just under calsync's work limit), with a user of its own (so that each figure is
of that rule's series alone), it prints the process CPU time (`time.process_time`, all
threads: the app, the in-process client, the in-process emulator and the database
driver, not a database server) of

- ``validate``: `validate_recurrence` with the kept answers emptied first;
- ``POST``: ``POST /events`` of a series with the rule (422 or 201);
- ``PUT``: ``PUT /events/{id}`` putting the rule on an existing series;
- ``pull``: the rule inserted into the calendar at Google (the emulator, as another
  client) and the calendar pulled (the emulator's work included);
- ``GET``: ``GET /events?expand=true`` over a year of that calendar, every kept
  validation and list memo emptied first (the pulled series among the others).

Each figure is the median of three rounds, each with a new writer and reader. Then it
runs the whole sequence again while another user's client calls ``GET /me`` in a
loop, and prints that user's p50 and p95 next to the same figures with nothing else
running. Everything runs in one process (one GIL), which makes a rule that holds the CPU
show at once in the other user's latency.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.domain.models import EventTime
from calsync.domain.recurrence import clear_rule_cache, validate_recurrence
from calsync.emulator.recurrence import sub_daily_rule
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl, build_calendar_service
from calsync.store.migrate import upgrade
from calsync.store.tables import Calendar
from calsync.sync import calendar_list, pull
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.google_users import connect_google_user
from tests.perf.scratch import scratch_database

_ALL = {
    name: ",".join(str(v) for v in range(low, high))
    for name, low, high in (
        ("month", 1, 13),
        ("monthday", 1, 32),
        ("hour", 0, 24),
        ("minute", 0, 60),
        ("setpos", 1, 367),
    )
}
_DATES = [f"{datetime(2031, 3, 5, 8) + timedelta(days=n):%Y%m%dT%H%M%SZ}" for n in range(986)]
_EXDATES = [f"EXDATE:{','.join(_DATES[i * 58 : (i + 1) * 58])}" for i in range(17)]
RULES: list[tuple[str, list[str]]] = [
    (
        "YEARLY, every BYMONTH, BYMONTHDAY, BYHOUR, BYMINUTE, BYSECOND",
        [
            f"RRULE:FREQ=YEARLY;BYMONTH={_ALL['month']};BYMONTHDAY={_ALL['monthday']};"
            f"BYHOUR={_ALL['hour']};BYMINUTE={_ALL['minute']};BYSECOND={_ALL['minute']}"
        ],
    ),
    (
        "YEARLY, BYSETPOS=1..366 of every day",
        [f"RRULE:FREQ=YEARLY;BYSETPOS={_ALL['setpos']};BYDAY=MO,TU,WE,TH,FR,SA,SU"],
    ),
    (
        "SECONDLY on Monday 29 February at 23:59",
        ["RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=23;BYMINUTE=59"],
    ),
    ("SECONDLY on 29 February", ["RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29"]),
    ("YEARLY, day 366 in February (never)", ["RRULE:FREQ=YEARLY;BYYEARDAY=366;BYMONTH=2"]),
    (
        "YEARLY every 4 years on 29 February (never)",
        ["RRULE:FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29"],
    ),
    ("WEEKLY every 400 years in July (never)", ["RRULE:FREQ=WEEKLY;INTERVAL=20871;BYMONTH=7"]),
    ("MONTHLY on a Monday that is the 1st Tuesday", ["RRULE:FREQ=MONTHLY;BYDAY=MO,1TU"]),
    ("SECONDLY at 23:59:59 only", ["RRULE:FREQ=SECONDLY;BYHOUR=23;BYMINUTE=59;BYSECOND=59"]),
    ("SECONDLY until 2099", ["RRULE:FREQ=SECONDLY;UNTIL=20990101T000000Z"]),
    ("HOURLY", ["RRULE:FREQ=HOURLY"]),
    ("MINUTELY every 15 min 9:00-10:59", ["RRULE:FREQ=MINUTELY;INTERVAL=15;BYHOUR=9,10"]),
    ("DAILY, COUNT=5000", ["RRULE:FREQ=DAILY;COUNT=5000"]),
    ("DAILY with 986 EXDATEs", ["RRULE:FREQ=DAILY", *_EXDATES]),
]
START = {
    "start_time": "2031-03-04T09:00:00",
    "end_time": "2031-03-04T09:30:00",
    "timezone": "Europe/Berlin",
}
ROUNDS = 3
RULES_AT = range(len(RULES))
YEAR = {"start_date": "2031-03-01", "end_date": "2032-02-28", "expand": "true", "limit": "200"}


def cpu(action: Callable[[], Any]) -> tuple[float, Any]:
    """Process CPU milliseconds of `action`, and its result."""
    began = time.process_time()
    result = action()
    return (time.process_time() - began) * 1000, result


@dataclasses.dataclass
class User:
    """A connected user: API headers, calendar, Google as another client of theirs, and
    a series of theirs (weekly, three times) to put rules on."""

    headers: dict[str, str]
    calendar: uuid.UUID
    google: Any
    series: str = ""


@dataclasses.dataclass
class Bench:
    services: Services
    control: EmulatorControl
    emulator_url: str
    client: TestClient
    verdicts: dict[str, tuple[str, int, int]] = dataclasses.field(default_factory=dict)

    def user(self, email: str) -> User:
        account, _ = connect_google_user(
            self.services, self.control, email, expires_at=datetime.now(UTC) + timedelta(days=1)
        )
        calendar_list.sync_calendar_list(self.services, account.id)
        token = issue_token(self.services.jwt, subject=str(account.id), email=email, role="user")
        with self.services.sessions() as session:
            calendar = session.scalar(sa.select(Calendar.id).where(Calendar.user_id == account.id))
        assert calendar is not None
        access = self.control.issue_tokens(email)["access_token"]
        google = build_calendar_service(self.emulator_url, access).events()
        user = User({"Authorization": f"Bearer {token}"}, calendar, google)
        kept = START | {"title": "kept", "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]}
        user.series = self.client.post("/events", json=kept, headers=user.headers).json()["id"]
        self.pull(user)
        return user

    def pull(self, user: User) -> None:
        with self.services.sessions.begin() as session:
            row = session.get(Calendar, user.calendar)
            assert row is not None
            row.sync_lease_owner = None
            row.sync_lease_until = None
            row.last_pull_at = None
        pull.pull_calendar(self.services, user.calendar)

    def forget(self) -> None:
        """Empty every kept validation (a process that never saw the rule)."""
        clear_rule_cache()

    def run(self, user: User, reader: User, title: str, lines: list[str]) -> list[float]:
        """One round of figures for `lines`: written by `user` through the API, pulled into
        `reader`'s calendar from Google and listed there (alone with `reader`'s weekly
        series). CPU milliseconds of validate, POST, PUT, pull and GET, in that order;
        `self.verdicts` gets what validation and the API said."""
        self.forget()
        start = EventTime.at(datetime(2031, 3, 4, 9), "Europe/Berlin")
        validate_ms, verdict = cpu(lambda: _verdict(lines, start))
        body = START | {"title": title, "recurrence": lines}
        self.forget()
        post_ms, posted = cpu(lambda: self.client.post("/events", json=body, headers=user.headers))
        self.forget()
        put_ms, put = cpu(
            lambda: self.client.put(f"/events/{user.series}", json=body, headers=user.headers)
        )
        if sub_daily_rule(lines) is None:  # Google holds no sub-daily rule (JO1)
            reader.google.insert(
                calendarId="primary",
                body={
                    "summary": title,
                    "start": {"dateTime": "2031-03-04T10:00:00", "timeZone": "Europe/Berlin"},
                    "end": {"dateTime": "2031-03-04T10:30:00", "timeZone": "Europe/Berlin"},
                    "recurrence": lines,
                },
            ).execute()
        self.forget()
        pull_ms, _ = cpu(lambda: self.pull(reader))
        self.forget()
        get_ms, listed = cpu(
            lambda: self.client.get("/events", params=YEAR, headers=reader.headers)
        )
        assert listed.status_code == 200, listed.text
        self.verdicts[title] = (verdict, posted.status_code, put.status_code)
        return [validate_ms, post_ms, put_ms, pull_ms, get_ms]


def _verdict(lines: list[str], start: EventTime) -> str:
    try:
        validate_recurrence(lines, start)
    except ValueError:
        return "refused"
    return "accepted"


def watch_me(client: TestClient, headers: dict[str, str], stop: threading.Event) -> list[float]:
    """Wall-clock milliseconds of ``GET /me`` calls made one after another until `stop`."""
    timings: list[float] = []
    while not stop.is_set():
        began = time.perf_counter()
        response = client.get("/me", headers=headers)
        timings.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text
    return timings


def percentiles(timings: list[float]) -> str:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms ({len(ordered)} calls)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="sqlite")
    parser.add_argument("--me-seconds", type=float, default=2.0)
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
            # /me is called in a loop: neither the user's nor the address's limit applies
            api_rate_limit_per_minute=1_000_000,
            address_rate_limit_per_minute=1_000_000,
        )
        services = bootstrap(settings)
        upgrade(services.engine)
        app = create_app(services)
        with TestClient(app) as client, TestClient(app) as other:
            bench = Bench(services, control, emulator.url, client)
            rounds = [
                [(bench.user(f"w{r}.{i}@x.org"), bench.user(f"r{r}.{i}@x.org")) for i in RULES_AT]
                for r in range(ROUNDS + 1)
            ]
            bob = bench.user("bob@example.com")
            print(f"db={args.db}; CPU ms per operation, median of {ROUNDS} rounds")
            print("| rule | validate | POST /events | PUT | pull | GET expanded year |")
            print("| --- | --- | --- | --- | --- | --- |")
            for index, (title, lines) in enumerate(RULES):
                runs = [bench.run(*rounds[r][index], title, lines) for r in range(ROUNDS)]
                cells = [statistics.median(column) for column in zip(*runs, strict=True)]
                verdict, post, put = bench.verdicts[title]
                print(
                    f"| {title} | {cells[0]:.1f} ({verdict}) | {cells[1]:.1f} ({post}) "
                    f"| {cells[2]:.1f} ({put}) | {cells[3]:.1f} | {cells[4]:.1f} |",
                    flush=True,
                )

            stop = threading.Event()
            threading.Timer(args.me_seconds, stop.set).start()
            idle = watch_me(other, bob.headers, stop)
            print(f"another user's GET /me, nothing else running: {percentiles(idle)}")
            stop.clear()
            found: list[list[float]] = []
            watcher = threading.Thread(
                target=lambda: found.append(watch_me(other, bob.headers, stop))
            )
            watcher.start()
            for (user, reader), (title, lines) in zip(rounds[ROUNDS], RULES, strict=True):
                bench.run(user, reader, title, lines)
            stop.set()
            watcher.join()
            print(f"another user's GET /me while the rows above run again: {percentiles(found[0])}")
        services.close()


if __name__ == "__main__":
    main()
