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


def _tree(pid: int, children: Mapping[int, list[int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


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


def backends(engine: sa.Engine, database: str) -> dict[int, int]:
    """The PostgreSQL backends connected to `database` (this query's own among them), each
    with its client's local TCP port (0 when it is not TCP)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT pid, client_port FROM pg_stat_activity WHERE datname = :name"),
            {"name": database},
        )
        return {int(row[0]): int(row[1] or 0) for row in rows}


def socket_owners(pids: Mapping[str, list[int]]) -> dict[int, str]:
    """Local TCP port -> the role whose process holds that socket (from /proc)."""
    inodes: dict[str, str] = {}
    for role, members in pids.items():
        for pid in members:
            try:
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes[target[8:-1]] = role
            except OSError:
                continue
    ports: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            owner = inodes.get(fields[9])
            if owner is not None:
                ports[int(fields[1].rsplit(":", 1)[1], 16)] = owner
    return ports


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclasses.dataclass
class Sample:
    """One reading of every role's CPU seconds so far (backends by pid)."""

    wall: float
    roles: dict[str, float]
    backends: dict[int, float]
    clients: dict[int, str]


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
        cpu: dict[int, float] = {}
        clients: dict[int, str] = {}
        if self.engine is not None:
            found = backends(self.engine, self.database)
            members = {role: _tree(pid, children) for role, pid in self.roots.items()}
            members["bench"] = [os.getpid()]
            owners = socket_owners(members)
            for pid, port in found.items():
                cpu[pid] = tree_cpu(pid, {})
                clients[pid] = owners.get(port, "?")
        return Sample(self.clock(), roles, cpu, clients)

    @staticmethod
    def breakdown(before: Sample, after: Sample) -> dict[str, float]:
        """CPU seconds each role used from `before` to `after`; ``postgres`` sums the
        backends (one that was not there before counts from its start); ``other`` is the
        host's busy time that no listed role used."""
        used = {role: after.roles[role] - before.roles.get(role, 0.0) for role in after.roles}
        if after.backends or before.backends:
            by_client: dict[str, float] = {}
            for pid, cpu in after.backends.items():
                client = after.clients.get(pid) or before.clients.get(pid, "?")
                key = f"  postgres for {client}"
                by_client[key] = by_client.get(key, 0.0) + cpu - before.backends.get(pid, 0.0)
            used["postgres backends"] = sum(by_client.values())
        host = used.pop("host, all processes")
        listed = sum(value for role, value in used.items())
        used["other (not listed)"] = host - listed
        if after.backends or before.backends:
            used.update(sorted(by_client.items()))
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
