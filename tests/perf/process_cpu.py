"""CPU time of each process a load benchmark runs, over a measured interval.

A benchmark names its processes by role (``api``, ``worker``, ...) with a root process id
each (its descendants are counted with it: the worker's Dramatiq children); the PostgreSQL
backends serving one database are found from ``pg_stat_activity`` at each sample and
summed; the Redis server's CPU comes from its ``INFO cpu`` (the whole server: other
clients of the same Redis count too); the host's busy time from ``/proc/stat`` says what
the listed processes leave for everything else (other users of the machine).

All figures are CPU seconds (user + system) read from ``/proc``: a process that exits
between two samples loses what it used since the first (the load's processes live
throughout), and a PostgreSQL backend that appears counts from its start.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import redis
import sqlalchemy as sa

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children() -> dict[int, list[int]]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    return parents


def tree_cpu(pid: int, children: Mapping[int, list[int]]) -> float:
    """User + system seconds of `pid` and every process below it."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
        todo.extend(children.get(current, []))
    return total / TICKS


def host_busy() -> float:
    """Seconds of CPU the whole host has spent not idle (all cores)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def backend_pids(engine: sa.Engine, database: str) -> list[int]:
    """The PostgreSQL backends connected to `database` (this query's own among them)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :name"), {"name": database}
        )
        return [int(row[0]) for row in rows]


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclasses.dataclass
class Sample:
    """One reading of every role's CPU seconds so far (backends by pid)."""

    wall: float
    roles: dict[str, float]
    backends: dict[int, float]


@dataclasses.dataclass
class Meter:
    """Samples the roles' CPU; `breakdown` gives each one's share between two samples.

    `roots` maps a role to its root process id; `engine` and `database` find the
    PostgreSQL backends (``None`` on SQLite); `redis_client` reads the Redis server's CPU.
    This process's own CPU is the role ``bench`` (the probes, the checks), and the
    children it has waited for (``wrk``) the role ``wrk``.
    """

    roots: dict[str, int]
    engine: sa.Engine | None = None
    database: str = ""
    redis_client: redis.Redis | None = None
    clock: Callable[[], float] = time.monotonic

    def sample(self) -> Sample:
        children = _children()
        roles = {role: tree_cpu(pid, children) for role, pid in self.roots.items()}
        roles["bench"] = time.process_time()
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        roles["wrk"] = waited.ru_utime + waited.ru_stime
        if self.redis_client is not None:
            roles["redis (whole server)"] = redis_cpu(self.redis_client)
        roles["host, all processes"] = host_busy()
        backends: dict[int, float] = {}
        if self.engine is not None:
            for pid in backend_pids(self.engine, self.database):
                backends[pid] = tree_cpu(pid, {})
        return Sample(self.clock(), roles, backends)

    @staticmethod
    def breakdown(before: Sample, after: Sample) -> dict[str, float]:
        """CPU seconds each role used from `before` to `after`; ``postgres`` sums the
        backends (one that was not there before counts from its start); ``other`` is the
        host's busy time that no listed role used."""
        used = {role: after.roles[role] - before.roles.get(role, 0.0) for role in after.roles}
        if after.backends or before.backends:
            used["postgres backends"] = sum(
                cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items()
            )
        host = used.pop("host, all processes")
        listed = sum(value for role, value in used.items())
        used["other (not listed)"] = host - listed
        used["host, all processes"] = host
        return used


def report(used: Mapping[str, float], seconds: float, requests: int, label: str) -> str:
    """A table: each role's CPU seconds, cores used and milliseconds per request."""
    lines = [f"CPU by process over {label} ({seconds:.1f} s, {requests} requests):"]
    lines.append(f"  {'process':<24} {'CPU s':>8} {'cores':>6} {'ms/request':>11}")
    for role, value in used.items():
        per = value * 1000 / requests if requests else 0.0
        cores = value / seconds if seconds else 0.0
        lines.append(f"  {role:<24} {value:8.2f} {cores:6.2f} {per:11.3f}")
    return "\n".join(lines)
