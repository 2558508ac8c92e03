"""What PostgreSQL spends storing a full sync's ``events`` rows, part by part.

Run: ``.venv/bin/python -m tests.perf.copy_tail_costs --database NAME[,NAME...]
[--rounds 5] [--only WAY ...]``

`NAME` is a database a benchmark left a synced calendar in (``full_sync_costs
--database NAME`` leaves its 10,000 rows). In one rolled-back transaction a way, every
``events`` row is copied aside, deleted and inserted again (``INSERT ... SELECT``, the
rows a full sync's ``COPY`` writes), with parts of the table's upkeep switched off for
that transaction only: the foreign keys' checks (one or both), the read model's
statement trigger, each secondary index, all of them. Printed per way: the backend's
CPU for the insert (``/proc``, from its ``pg_backend_pid``: comparable under load, where
wall time is not), median and each round. The ways take turns, round by round.
Nothing is changed: every way rolls back (``ALTER TABLE`` and ``DROP INDEX`` included).
Several databases (the same rows under two schemas, decision IX) take turns round by
round; ``--only`` keeps the named ways (``--only everything``).
Decision IT1 reads it: a way's saving is what the ``COPY``'s tail would lose.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import psycopg

_FOREIGN_KEYS = """
    SELECT c.conname, t.tgname FROM pg_trigger t JOIN pg_constraint c ON c.oid = t.tgconstraint
    WHERE t.tgrelid = 'events'::regclass AND t.tgname LIKE 'RI_ConstraintTrigger_c_%'
    AND t.tgtype & 4 = 4
"""  # the checks on insert (TRIGGER_TYPE_INSERT), one per foreign key of events
_SECONDARY = """
    SELECT indexname FROM pg_indexes WHERE tablename = 'events'
    AND indexname NOT IN ('pk_events', 'uq_events_calendar_id_google_event_id')
"""


def ways(connection: psycopg.Connection[tuple[str, ...]]) -> dict[str, list[str]]:
    """By name, the statements that switch a part off inside the transaction."""
    checks = {str(row[0]): str(row[1]) for row in connection.execute(_FOREIGN_KEYS)}
    found: dict[str, list[str]] = {"everything": []}
    both: list[str] = []
    for constraint, trigger in sorted(checks.items()):
        found[f"without {constraint}"] = [f'ALTER TABLE events DISABLE TRIGGER "{trigger}"']
        both += found[f"without {constraint}"]
    found["without either foreign key"] = both
    found["without the statement trigger"] = [
        "ALTER TABLE events DISABLE TRIGGER events_instances_insert"
    ]
    indexes = [row[0] for row in connection.execute(_SECONDARY).fetchall()]
    for index in indexes:
        found[f"without {index}"] = [f"DROP INDEX {index}"]
    found["without the secondary indexes"] = [f"DROP INDEX {index}" for index in indexes]
    found["heap and unique keys only"] = [
        *found["without either foreign key"],
        *found["without the statement trigger"],
        *found["without the secondary indexes"],
    ]
    return found


def backend_cpu(pid: int) -> float:
    """The backend's user + system CPU so far, in milliseconds (clock ticks of 10 ms)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 10.0


def insert_cpu(connection: psycopg.Connection[tuple[str, ...]], switched_off: list[str]) -> float:
    """The backend's CPU for re-inserting every row, with `switched_off` run first."""
    with connection.transaction(force_rollback=True):
        connection.execute("CREATE TEMP TABLE aside ON COMMIT DROP AS SELECT * FROM events")
        connection.execute("DELETE FROM events")
        for statement in switched_off:
            connection.execute(statement.encode())  # names from the catalog queries above
        row = connection.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        before = backend_cpu(int(row[0]))
        connection.execute("INSERT INTO events SELECT * FROM aside")
        return backend_cpu(int(row[0])) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a name, or several, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", default="postgres")
    parser.add_argument(
        "--only", action="append", default=[], help="a way's name (repeatable): only these"
    )
    args = parser.parse_args()
    connections = {
        name: psycopg.connect(host=args.host, user=args.user, dbname=name, autocommit=True)
        for name in args.database.split(",")
    }
    spent: dict[tuple[str, str], list[float]] = {}
    try:
        found = {}
        for name, connection in connections.items():
            rows = connection.execute("SELECT count(*) FROM events").fetchone()
            print(f"{name}: {rows[0] if rows else 0:,} events rows")
            found[name] = {
                way: off
                for way, off in ways(connection).items()
                if not args.only or way in args.only
            }
        print(f"{args.rounds} rounds, databases and ways in turn")
        for _ in range(args.rounds):
            for name, connection in connections.items():
                for way, switched_off in found[name].items():
                    spent.setdefault((name, way), []).append(insert_cpu(connection, switched_off))
    finally:
        for connection in connections.values():
            connection.close()
    for (name, way), values in spent.items():
        cells = ", ".join(f"{v:,.0f}" for v in values)
        label = way if len(connections) == 1 else f"{name}, {way}"
        print(f"  {label}: backend CPU median {statistics.median(values):,.0f} ms ({cells})")


if __name__ == "__main__":
    main()
