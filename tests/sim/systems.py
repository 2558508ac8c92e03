"""The two installations the simulation runs against, behind one small interface.

- `EmbeddedSystem`: ``calsync dev`` (`tests.sim.dev_process`): SQLite, the in-process
  broker, worker and scheduler threads, all in one process that the simulation kills
  with SIGKILL and starts again.
- `ProductionSystem`: PostgreSQL (a database of its own on the shared server), a private
  Redis that the simulation restarts, ``calsync serve``, two ``calsync worker``
  processes that it kills, and the scheduler's sweeps run by the test
  (`tests.faults.helpers.Sweeper`, every second, looking past retry backoffs).

Both talk to one emulator process that outlives every restart. A system knows how to
start, stop, apply the faults of its mode (`faults`), and heal: bring back what is down
and let go of what a killed process held (`heal`). Nothing here checks anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from cryptography.fernet import Fernet

from calsync.bootstrap import Services, bootstrap
from calsync.config import Mode, Settings
from calsync.store.db import make_engine
from calsync.store.migrate import upgrade
from calsync.store.tables import Event as EventRow
from calsync.store.tables import utcnow
from calsync.sync.write_back import LEASE as PUSH_LEASE
from tests.conftest import PG_SERVER, REDIS_URL
from tests.faults.helpers import Sweeper
from tests.faults.processes import WorkerProcess, env_for
from tests.faults.services import PrivateRedis, free_port
from tests.sim.dev_process import embedded_settings, sim_settings
from tests.sim.processes import ServiceProcess, calsync_command

#: How far the test's outbox sweep looks ahead: retries backed off by a fault burst
#: (2 s doubling) are pushed at the next sweep instead of minutes later.
PUSH_SKEW = timedelta(minutes=30)
#: Set to keep the production database after the run (to inspect a failure).
KEEP_VARIABLE = "CALSYNC_SIM_KEEP"


class System(Protocol):
    """An installation of calsync under simulation (see the module docstring)."""

    mode: str
    url: str
    services: Services | None  # the test's own view of the database (healing, dumps)

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def faults(self) -> dict[str, Callable[[], str]]:
        """The process faults of this mode by name; each applies itself, returns a note."""
        ...

    def heal(self) -> list[str]:
        """Bring back what a fault left down; returns what it did."""
        ...

    def peak_memory(self) -> int:
        """The largest resident set (bytes) calsync's processes reached so far, summed."""
        ...


def peak_rss(pid: int) -> int:
    """VmHWM of a process and its children (bytes), 0 if gone."""
    total = 0
    for one in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{one}/status").read_text()
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            total += int(found.group(1)) * 1024 if found else 0
    return total


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        found: list[int] = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(c) for c in text]
        return found + [g for c in found for g in _children(c)]
    return []


@dataclasses.dataclass
class PushLeases:
    """Push leases a killed process held, to release once it is gone.

    A push lease lasts 2 minutes (`calsync.sync.write_back.LEASE`); a test cannot wait that out
    after every kill. `note` remembers the leases taken before the kill: read a second
    later (a commit the dead process sent just before may land after the kill), only
    those that end within a lease of the kill (a lease taken since by a live process
    ends later). `release` clears those still holding the same value.
    """

    services: Services
    held: dict[uuid.UUID, datetime] = dataclasses.field(default_factory=dict)

    def note(self, killed_at: datetime) -> None:
        time.sleep(1.0)
        with self.services.sessions() as session:
            rows = session.execute(
                sa.select(EventRow.id, EventRow.push_lease_until).where(
                    EventRow.push_lease_until.is_not(None),
                    EventRow.push_lease_until <= killed_at + PUSH_LEASE,
                )
            ).all()
        self.held.update({row.id: row.push_lease_until for row in rows})

    def release(self) -> int:
        released = 0
        with self.services.sessions.begin() as session:
            for event_id, until in self.held.items():
                result = session.execute(
                    sa.update(EventRow)
                    .where(EventRow.id == event_id, EventRow.push_lease_until == until)
                    .values(push_lease_until=None)
                )
                released += int(result.rowcount)  # type: ignore[attr-defined]
        self.held.clear()
        return released


def new_key() -> str:
    return Fernet.generate_key().decode()


class EmbeddedSystem:
    """``calsync dev`` on SQLite in `folder` (see the module docstring)."""

    mode = "embedded"

    def __init__(self, folder: Path, google: str) -> None:
        self.folder = folder
        self.google = google
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys: tuple[str, ...] = (new_key(),)
        self.process: ServiceProcess | None = None
        self.peak = 0
        self.services: Services | None = None
        self.leases: PushLeases | None = None

    @property
    def settings(self) -> Settings:
        return embedded_settings(self.folder, google=self.google, port=self.port, keys=self.keys)

    def _launch(self) -> None:
        self.process = ServiceProcess(
            [
                sys.executable,
                "-m",
                "tests.sim.dev_process",
                "--state",
                str(self.folder),
                "--port",
                str(self.port),
                "--google",
                self.google,
                "--keys=" + ",".join(self.keys),  # keys may start with "-"
            ],
            url=self.url,
            log_file=self.folder / "dev.log",
            env={k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")},
        ).start()

    def _note_peak(self) -> None:
        if self.process is not None and self.process.process is not None:
            self.peak = max(self.peak, peak_rss(self.process.process.pid))

    def start(self) -> None:
        self._launch()
        # The test's own view of the database, only to release a killed process's leases.
        self.services = bootstrap(self.settings)
        self.leases = PushLeases(self.services)

    def stop(self) -> None:
        self._note_peak()
        if self.process is not None:
            self.process.stop()
        if self.services is not None:
            self.services.close()

    def restart(self) -> str:
        """kill -9 of the dev process, then start it again."""
        assert self.process is not None
        assert self.leases is not None
        self._note_peak()
        killed_at = utcnow()
        self.process.kill()
        self.leases.note(killed_at)
        self._launch()
        return "dev process killed (SIGKILL) and restarted"

    def rotate_keys(self) -> str:
        """Stop, add a new key in front, ``calsync rotate-keys``, start on both keys."""
        assert self.process is not None
        self._note_peak()
        self.process.stop()
        self.keys = (new_key(), *self.keys)
        # rotate-keys reads a production-style environment; it never touches the broker.
        settings = dataclasses.replace(self.settings, mode=Mode.PRODUCTION, redis_url=REDIS_URL)
        out = subprocess.run(
            calsync_command("rotate-keys"),
            env=env_for(settings),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        self._launch()
        return out.stdout.strip()

    def faults(self) -> dict[str, Callable[[], str]]:
        return {"restart": self.restart, "rotate_keys": self.rotate_keys}

    def heal(self) -> list[str]:
        assert self.leases is not None
        released = self.leases.release()
        return [f"released {released} push lease(s) of killed processes"] if released else []

    def peak_memory(self) -> int:
        self._note_peak()
        return self.peak


class ProductionSystem:
    """``calsync serve`` + workers on PostgreSQL and a private Redis (module docstring)."""

    mode = "production"

    def __init__(self, folder: Path, google: str, *, workers: int = 2, threads: int = 4) -> None:
        self.folder = folder
        self.google = google
        self.workers_wanted = workers
        self.threads = threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys: tuple[str, ...] = (new_key(),)
        self.redis = PrivateRedis(folder)
        self.database = f"calsync_sim_{uuid.uuid4().hex[:12]}"
        self.serve: ServiceProcess | None = None
        self.workers: list[WorkerProcess] = []
        self.services: Services | None = None
        self.sweeper: Sweeper | None = None
        self._sweeping: contextlib.ExitStack | None = None
        self.leases: PushLeases | None = None
        self.peak: dict[str, int] = {}
        self._lock = threading.Lock()
        self._killed = 0

    @property
    def settings(self) -> Settings:
        base = dataclasses.replace(
            Settings.embedded(self.folder),
            mode=Mode.PRODUCTION,
            database_url=f"{PG_SERVER}/{self.database}",
            redis_url=self.redis.url,
            encryption_keys=self.keys,
        )
        return sim_settings(base, google=self.google, public_url=self.url)

    def _env(self) -> dict[str, str]:
        return env_for(self.settings) | {
            "CALSYNC_API_RATE_LIMIT_PER_MINUTE": "100000",
            "CALSYNC_TRUSTED_PROXIES": ",".join(self.settings.trusted_proxies),
        }

    def _admin(self) -> sa.Engine:
        return make_engine(f"{PG_SERVER}/postgres").execution_options(isolation_level="AUTOCOMMIT")

    def start(self) -> None:
        admin = self._admin()
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{self.database}"'))
        admin.dispose()
        engine = make_engine(self.settings.database_url)
        upgrade(engine)
        engine.dispose()
        self.redis.start()
        self.services = bootstrap(self.settings)
        self.leases = PushLeases(self.services)
        self._start_processes()
        self.sweeper = Sweeper(self.services, every=1.0, push_skew=PUSH_SKEW)
        self._sweeping = contextlib.ExitStack()
        self._sweeping.enter_context(self.sweeper.running())

    def _start_processes(self) -> None:
        self.serve = ServiceProcess(
            calsync_command(
                "serve", "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log"
            ),
            url=self.url,
            log_file=self.folder / "serve.log",
            env=self._env(),
        ).start()
        for _ in range(self.workers_wanted):
            self._start_worker()

    def _start_worker(self) -> WorkerProcess:
        assert self.services is not None
        worker = WorkerProcess(self.settings, self.folder / "worker.log", threads=self.threads)
        worker.start().wait_ready(self.services)
        self.workers.append(worker)
        return worker

    def _note_peak(self) -> None:
        for name, process in [("serve", self.serve), *(("worker", w) for w in self.workers)]:
            popen = process.process if process is not None else None
            if popen is not None:
                key = f"{name}:{popen.pid}"
                self.peak[key] = max(self.peak.get(key, 0), peak_rss(popen.pid))

    def _stop_processes(self) -> None:
        """Stop as a deployment does: SIGTERM to each worker's main process, which lets
        the jobs in hand finish. (Not to the process group: Dramatiq's worker process,
        signalled directly and again by its parent, is killed hard and its jobs' leases
        stay held.)"""
        self._note_peak()
        for worker in self.workers:
            if worker.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        for worker in self.workers:
            if worker.process is not None:
                try:
                    worker.process.wait(60)
                except subprocess.TimeoutExpired:
                    killed_at = utcnow()
                    worker.kill()
                    if self.leases is not None:
                        self.leases.note(killed_at)
            worker.process = None
        self.workers.clear()
        if self.serve is not None:
            self.serve.stop()

    def stop(self) -> None:
        if self._sweeping is not None:
            self._sweeping.close()
        self._stop_processes()
        if self.services is not None:
            self.services.close()
        self.redis.stop()
        if os.environ.get(KEEP_VARIABLE):
            print(f"[sim] kept the database {self.settings.database_url}", flush=True)
            return
        admin = self._admin()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        admin.dispose()

    def kill_worker(self) -> str:
        """kill -9 of one worker process (the oldest), and a new one in its place."""
        assert self.leases is not None
        with self._lock:
            self._note_peak()
            victim = self.workers.pop(0)
            killed_at = utcnow()
            victim.kill()
            self.leases.note(killed_at)
            self._start_worker()
            self._killed += 1
        return "worker killed (SIGKILL) and replaced"

    def restart_redis(self) -> str:
        """Redis stopped for a second and started empty (no persistence)."""
        self.redis.restart(down_for=1.0)
        return "redis restarted empty"

    def rotate_keys(self) -> str:
        """A rolling restart onto a new key (the old one kept), then ``calsync rotate-keys``."""
        with self._lock:
            self.keys = (new_key(), *self.keys)
            self._stop_processes()
            self._start_processes()
            assert self.services is not None
            out = subprocess.run(
                calsync_command("rotate-keys"),
                env=env_for(self.settings),
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
        return out.stdout.strip()

    def faults(self) -> dict[str, Callable[[], str]]:
        return {
            "kill_worker": self.kill_worker,
            "restart_redis": self.restart_redis,
            "rotate_keys": self.rotate_keys,
        }

    def heal(self) -> list[str]:
        assert self.leases is not None
        released = self.leases.release()
        return [f"released {released} push lease(s) of killed processes"] if released else []

    def peak_memory(self) -> int:
        """The API process's peak plus the workers' largest peak times their number (each
        role's largest over restarts: a fault replaces processes)."""
        self._note_peak()

        def largest(role: str) -> int:
            return max((v for k, v in self.peak.items() if k.startswith(role)), default=0)

        return largest("serve") + self.workers_wanted * largest("worker")
