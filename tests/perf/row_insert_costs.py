"""What PostgreSQL spends on single-row ``events`` inserts, one database's schema against
another's: the API's create writes its event so, one ``INSERT`` a row (decision IX).

Run: ``.venv/bin/python -m tests.perf.row_insert_costs --databases A,B [--rows 2000]
[--rounds 5]``

Each database is one a benchmark left a synced calendar in (``full_sync_costs --database
NAME``), the same rows in each (one copied from the other with ``CREATE DATABASE ...
TEMPLATE``, then migrated, say). Round by round, the databases taking turns, in one
rolled-back transaction each: `--rows` of the ``events`` rows are copied aside (a
temporary table with their ids as its key), deleted, and inserted again one statement a
row (``INSERT ... SELECT`` of one row by its id, prepared), so each row's foreign keys'
checks and the read model's statement trigger run as for a create. Printed per database:
the backend's CPU a row (``/proc``, from its ``pg_backend_pid``: comparable under load),
median and each round. Nothing is changed: every round rolls back.
"""

from __future__ import annotations

import argparse
import statistics

import psycopg

from tests.perf.copy_tail_costs import backend_cpu


def row_inserts_cpu(connection: psycopg.Connection[tuple[str, ...]], rows: int) -> float:
    """The backend's CPU, in microseconds a row, for inserting `rows` rows one by one."""
    with connection.transaction(force_rollback=True):
        connection.execute(
            "CREATE TEMP TABLE aside ON COMMIT DROP AS SELECT * FROM events ORDER BY id LIMIT %s",
            (rows,),
        )
        connection.execute("ALTER TABLE aside ADD PRIMARY KEY (id)")
        ids = [row[0] for row in connection.execute("SELECT id FROM aside").fetchall()]
        connection.execute("DELETE FROM events WHERE id IN (SELECT id FROM aside)")
        found = connection.execute("SELECT pg_backend_pid()").fetchone()
        assert found is not None
        before = backend_cpu(int(found[0]))
        for event_id in ids:
            connection.execute(
                "INSERT INTO events SELECT * FROM aside WHERE id = %s", (event_id,), prepare=True
            )
        return (backend_cpu(int(found[0])) - before) * 1000 / len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--databases", required=True, help="comma-separated names")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", default="postgres")
    args = parser.parse_args()
    names = args.databases.split(",")
    connections = {
        name: psycopg.connect(host=args.host, user=args.user, dbname=name, autocommit=True)
        for name in names
    }
    spent: dict[str, list[float]] = {name: [] for name in names}
    try:
        for _ in range(args.rounds):
            for name, connection in connections.items():
                spent[name].append(row_inserts_cpu(connection, args.rows))
    finally:
        for connection in connections.values():
            connection.close()
    print(f"{args.rows:,} single-row inserts a round, {args.rounds} rounds, databases in turn")
    for name, values in spent.items():
        cells = ", ".join(f"{v:,.1f}" for v in values)
        print(f"  {name}: backend CPU a row median {statistics.median(values):,.1f} us ({cells})")


if __name__ == "__main__":
    main()
