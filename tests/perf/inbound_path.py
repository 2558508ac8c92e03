"""What calsync runs for one Google notification, up to the change notice recorded.

Run: ``.venv/bin/python -m tests.perf.inbound_path [--database sqlite|postgresql]
[--pg postgresql://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/1] [--json]``

One process. Set-up, not measured: the emulator served on a thread; Carol's "Team"
calendar, which Alice reads through calsync (tokens stored, calendar list read), holds
one meeting both attend; its first full sync; its push channel opened. Carol moves the
meeting by two hours with her own client; the emulator sends the channel's ``exists``
notification, which a `PushReceiver` records with Google's headers.

Measured (`executed_lines.LineTracer`, limited to ``calsync/`` without the emulator):

- **intake**: that notification given to the app of ``create_app`` (the real ASGI
  stack, the intake in front) on an event loop in this thread, until it answers; the
  app is new, so the channel is read from the database, as for any notification that
  comes more than the channel cache's seconds after the last one;
- **job**: the ``sync_calendar`` message the intake queued, run here as a Dramatiq
  worker thread runs it (the broker's ``process_message`` middleware around the actor);
  within it, by the function entered: **pull+listing** (`pull.pull_calendar`: the lease,
  the token, the ``events.list`` call, the mapping), **reconcile+store** (`pull._store`:
  the transaction that ends the pull and writes the rows and the sync log), **notice**
  (`changes.events_changed` and `reschedule_many`: the notice rows and the reminders);
- **upkeep (excluded)**: the read model's hooks on the pull's session (`store/db`
  ``before_commit``, `events/upkeep` ``after_commit`` that queues its job; since IO2 also
  `upkeep.records_uncounted` and `counted`, which the pull's log row asks). The upkeep
  job itself is not run; docs/architecture.md leaves the read model out of the path
  too. Printed, not in the totals.

Printed: the calsync modules that ran, with the statements run in each (a statement
over several lines counts once; docstrings, comments and blank lines never count) by
stage, and each module's whole length (``wc -l``) for comparison with counts of whole
modules. The same script runs on an older tree (put it first on ``PYTHONPATH``):
markers and calls that a tree lacks are skipped and named.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import pkgutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import redis
import sqlalchemy as sa
from dramatiq import Message
from dramatiq.broker import MessageProxy

import calsync
from calsync.bootstrap import Services, bootstrap
from calsync.config import Mode, Settings
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import (
    EmulatorControl,
    PushReceiver,
    RecordedPush,
    build_calendar_service,
)
from calsync.store import migrate
from calsync.store.db import make_engine, normalise_url
from calsync.store.tables import Calendar, NotificationDelivery, WatchChannel
from calsync.sync import channels
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.pull import pull_calendar
from calsync.web.app import create_app
from tests.google_users import connect_google_user
from tests.perf.executed_lines import LineTracer, statements_run

ALICE = "alice@example.com"
CAROL = "carol@example.com"
PACKAGE = Path(calsync.__file__).resolve().parent
EMULATOR = PACKAGE / "emulator"

INTAKE, JOB, PULL, STORE, NOTICE = "intake", "job", "pull+listing", "reconcile+store", "notice"
UPKEEP = "upkeep (excluded)"
STAGES = (INTAKE, JOB, PULL, STORE, NOTICE)

#: Where a stage starts: the function entered (absent names are skipped: older trees).
MARKERS = {
    "calsync.sync.pull:pull_calendar": PULL,
    "calsync.sync.pull:_store": STORE,
    "calsync.notify.changes:events_changed": NOTICE,
    "calsync.notify.on_event_change:reschedule_many": NOTICE,
    "calsync.notify.hooks:reschedule_many": NOTICE,
    # the read model's upkeep, left out as docs/architecture.md leaves it out
    "calsync.store.db:_refresh_read_model": UPKEEP,
    "calsync.store.db:_note_writes": UPKEEP,
    "calsync.store.db:_note_flush": UPKEEP,
    "calsync.events.upkeep:watch.<locals>.after_commit": UPKEEP,
    "calsync.events.upkeep:watch.<locals>.after_rollback": UPKEEP,
    # since IO2 a pull asks the upkeep whether its log row counts the records, and hands
    # it the count: the same hooks' work, moved into the pull's last statement
    "calsync.events.upkeep:records_uncounted": UPKEEP,
    "calsync.events.upkeep:counted": UPKEEP,
}

MEETING: dict[str, Any] = {
    "summary": "Roadmap review",
    "location": "Room 1",
    "attendees": [{"email": ALICE}, {"email": CAROL}],
}


class SentMessages(dramatiq.Middleware):
    """Keeps every message the broker enqueues (the driver runs the one it needs)."""

    def __init__(self) -> None:
        self.sent: list[Message[Any]] = []

    def after_enqueue(self, broker: dramatiq.Broker, message: Message[Any], delay: int) -> None:
        self.sent.append(message)


@dataclass
class Driven:
    """What one driven notification did, and what ran for it."""

    status: int  # the intake's answer
    queued: str  # the actor of the message run as the job
    notices: int  # change notices recorded for Alice
    tracer: LineTracer


def import_everything() -> None:
    """Import every calsync module, so that no module body runs in the measured span."""
    for module in pkgutil.walk_packages(calsync.__path__, "calsync."):
        if module.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional dependency (e.g. of a dev-only module)
            continue


def _times(start: datetime) -> dict[str, Any]:
    return {
        "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
    }


@dataclass
class _Team:
    services: Services
    receiver: PushReceiver
    sent: SentMessages
    calendar_id: uuid.UUID
    alice: uuid.UUID
    push: RecordedPush


def _set_up(settings: Settings, google_url: str, control: EmulatorControl) -> _Team:
    """Everything before the notification: see the module docstring."""
    receiver = PushReceiver().start()
    public = receiver.url.rsplit("/", 1)[0]
    settings = dataclasses.replace(
        settings,
        google_api_base=google_url,
        google_oauth_base=google_url,
        google_client_id="calsync-dev",
        google_client_secret="calsync-dev-secret",
        public_url=public,
        sync_min_interval_seconds=0.0,
    )
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    engine.dispose()
    services = bootstrap(settings)
    sent = SentMessages()
    services.broker.add_middleware(sent)
    control.create_user(CAROL)
    account, granted = connect_google_user(
        services,
        control,
        ALICE,
        calendars=[{"summary": "Team", "access_role": "reader", "owner": CAROL}],
    )
    [team] = [c for c in granted["calendars"] if c["summary"] == "Team"]
    sync_calendar_list(services, account.id)
    with services.sessions() as session:
        calendar_id = session.scalars(
            sa.select(Calendar.id).where(
                Calendar.user_id == account.id, Calendar.provider_calendar_id == team["id"]
            )
        ).one()
    carol = build_calendar_service(google_url, control.issue_tokens(CAROL)["access_token"])
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=3)
    meeting = carol.events().insert(calendarId=team["id"], body={**_times(start), **MEETING})
    meeting = meeting.execute()
    assert pull_calendar(services, calendar_id).status == "ok"  # the first full sync
    channels.ensure_channels(services, account.id)
    with services.sessions() as session:
        channel_id = str(
            session.scalars(
                sa.select(WatchChannel.id).where(WatchChannel.calendar_id == calendar_id)
            ).one()
        )
    seen = len(receiver.received)
    carol.events().patch(
        calendarId=team["id"], eventId=meeting["id"], body=_times(start + timedelta(hours=2))
    ).execute()
    carol.close()
    push = _wait_for_change(receiver, channel_id, seen)
    sent.sent.clear()
    return _Team(services, receiver, sent, calendar_id, account.id, push)


def _wait_for_change(receiver: PushReceiver, channel_id: str, seen: int) -> RecordedPush:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for push in receiver.wait_for(seen + 1, timeout=0.5)[seen:]:
            headers = {k.lower(): v for k, v in push.headers.items()}
            if (
                headers.get("x-goog-channel-id") == channel_id
                and headers.get("x-goog-resource-state") == "exists"
            ):
                return push
    raise RuntimeError("the emulator sent no change notification for the Team calendar")


def _scope(push: RecordedPush) -> dict[str, Any]:
    """The ASGI scope uvicorn would give calsync for the recorded POST."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/google",
        "raw_path": b"/webhooks/google",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in push.headers.items()
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _deliver(app: Any, push: RecordedPush, tracer: LineTracer) -> int:
    """The intake's answer to `push` (measured), then the intake's connections closed."""
    statuses: list[int] = []
    body_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if body_sent:
            await asyncio.Event().wait()  # nothing more: the client waits for the answer
        body_sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    with tracer.stage(INTAKE):
        await app(_scope(push), receive, send)
    with tracer.paused():
        marks = getattr(app.state, "dirty_marks", None)
        if marks is not None:
            await marks.aclose()
    [status] = statuses
    return status


def _run_job(services: Services, message: Message[Any]) -> None:
    """`message` run as a Dramatiq worker thread runs it (middleware around the actor)."""
    broker = services.broker
    actor = broker.get_actor(message.actor_name)
    proxy = MessageProxy(message)  # what a consumer hands the worker
    broker.emit_before("process_message", proxy)
    result = actor(*proxy.args, **proxy.kwargs)
    broker.emit_after("process_message", proxy, result=result)


def drive(settings: Settings, google_url: str, control: EmulatorControl) -> Driven:
    """Set up, then measure one notification from the intake to the notice recorded."""
    import_everything()
    team = _set_up(settings, google_url, control)
    services = team.services
    try:
        app = create_app(services)
        app.middleware_stack = app.build_middleware_stack()  # built before it first serves
        tracer = LineTracer(PACKAGE, [EMULATOR], MARKERS)
        with tracer:
            status = asyncio.run(_deliver(app, team.push, tracer))
            pulls = [m for m in team.sent.sent if m.actor_name == "sync_calendar"]
            [message] = pulls
            with tracer.stage(JOB):
                _run_job(services, message)
        with services.sessions() as session:
            notices = session.scalar(
                sa.select(sa.func.count())
                .select_from(NotificationDelivery)
                .where(NotificationDelivery.kind == "change")
                .where(NotificationDelivery.user_id == team.alice)
            )
        return Driven(status, message.actor_name, int(notices or 0), tracer)
    finally:
        team.receiver.stop()
        services.close()


def union_count(tracer: LineTracer, stages: list[str]) -> dict[str, int]:
    """Distinct statements run per module over `stages` (each statement once)."""
    merged: dict[str, set[int]] = {}
    for stage in stages:
        for filename, lines in tracer.lines.get(stage, {}).items():
            merged.setdefault(filename, set()).update(lines)
    return {
        str(Path(f).relative_to(PACKAGE.parent)): len(s)
        for f, s in sorted(statements_run(merged).items())
    }


def _wc(module: str) -> int:
    return len((PACKAGE.parent / module).read_text().splitlines())


def report(driven: Driven) -> dict[str, Any]:
    """The figures of `driven` as plain data (what ``--json`` prints)."""
    tracer = driven.tracer
    counted = [s for s in tracer.lines if s != UPKEEP]
    stages = {}
    for stage in [*STAGES, *[s for s in tracer.lines if s not in STAGES]]:
        if stage not in tracer.lines:
            continue
        per_module = union_count(tracer, [stage])
        stages[stage] = {
            "modules": len(per_module),
            "statements": sum(per_module.values()),
            "per_module": per_module,
        }
    path = union_count(tracer, counted)
    return {
        "intake_status": driven.status,
        "job": driven.queued,
        "change_notices": driven.notices,
        "unresolved_markers": tracer.unresolved,
        "stages": stages,
        "path": {
            "modules": len(path),
            "statements": sum(path.values()),
            "whole_module_lines": sum(_wc(m) for m in path),
            "per_module": path,
        },
    }


def print_report(figures: dict[str, Any]) -> None:
    print(
        f"intake answered {figures['intake_status']}; job {figures['job']}; "
        f"change notices recorded: {figures['change_notices']}"
    )
    if figures["unresolved_markers"]:
        print("markers absent from this tree:", ", ".join(figures["unresolved_markers"]))
    for stage, data in figures["stages"].items():
        print(f"\n{stage}: {data['modules']} modules, {data['statements']} statements")
        for module, n in data["per_module"].items():
            print(f"  {n:5d}  {module}")
    path = figures["path"]
    print(
        f"\nwebhook -> notice recorded (upkeep excluded): {path['modules']} modules, "
        f"{path['statements']} statements run "
        f"(those modules are {path['whole_module_lines']} lines with wc -l)"
    )


@contextmanager
def _database(kind: str, server: str) -> Iterator[str]:
    """A fresh database: a SQLite file, or PostgreSQL database ``ip_inbound`` (dropped)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ip-inbound-") as folder:
            yield f"sqlite:///{folder}/calsync.db"
        return
    admin = sa.create_engine(normalise_url(f"{server}/postgres"), isolation_level="AUTOCOMMIT")
    name = "ip_inbound"
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/1")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ip-inbound-state-") as state:
        base = Settings.embedded(Path(state))
        with _database(args.database, args.pg) as url, EmulatorServer() as emulator:
            settings = dataclasses.replace(base, database_url=url, run_emulator=False)
            queue = None
            if args.database == "postgresql":
                queue = redis.Redis.from_url(args.redis)
                queue.flushdb()
                settings = dataclasses.replace(settings, mode=Mode.PRODUCTION, redis_url=args.redis)
            with EmulatorControl(emulator.url) as control:
                control.reset()
                driven = drive(settings, emulator.url, control)
            if queue is not None:
                queue.flushdb()
                queue.close()
    figures = report(driven)
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        print()
    else:
        print_report(figures)
    return 0 if driven.notices else 1


if __name__ == "__main__":
    sys.exit(main())
