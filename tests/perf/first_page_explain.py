"""January's first page of 200 explained on new PostgreSQL backends: what a process's
first page costs PostgreSQL with and without nobody's page first (decision HZ1's
warm-up). Prints figures only.

Run: ``.venv/bin/python -m tests.perf.profile_page --seed-data --database D`` once, then
``.venv/bin/python -m tests.perf.first_page_explain --database D``: the page statement
and its values are captured as the API sends them (the app in this process, httpx's
ASGI transport), then ``EXPLAIN (ANALYZE, BUFFERS, SUMMARY)`` runs them three times on
each of three new connections, and on three more after nobody's page (the nil UUID as
the user) on the same connection; each line gives planning and execution time and the
buffers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

import httpx2 as httpx
import psycopg
import sqlalchemy as sa

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.perf.bench_months import MONTHS, PAGE, month_last
from tests.perf.profile_page import _environment, _state_file


def captured(database: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(the page statement, its values, the state file) of January's first page."""
    state = json.loads(_state_file(database).read_text())
    services = bootstrap(Settings.from_env(_environment("http://127.0.0.1:9", state["url"], state)))
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(_c: Any, _cursor: Any, statement: str, values: Any, _ctx: Any, _many: Any) -> None:
        if "event_instances" in statement:
            seen.append((statement, values))

    sa.event.listen(services.engine, "before_cursor_execute", record)
    token = issue_token(services.jwt, subject=state["user"], email=state["email"], role="user")
    first, after = MONTHS[0]
    query = {"start_date": first.isoformat(), "end_date": month_last((first, after)).isoformat()}
    query |= {"expand": "true", "limit": str(PAGE)}

    async def page() -> None:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://calsync") as client:
            answer = await client.get(
                "/events", params=query, headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 200, answer.text[:300]

    try:
        asyncio.run(page())
    finally:
        services.close()
    return seen[-1][0], seen[-1][1], state


def explain(connection: psycopg.Connection[Any], statement: str, values: Any) -> str:
    rows = connection.execute("EXPLAIN (ANALYZE, BUFFERS, SUMMARY) " + statement, values)
    lines = [str(row[0]).strip() for row in rows.fetchall()]
    buffers = [line for line in lines if line.startswith("Buffers")]
    times = [line for line in lines if line.startswith(("Planning Time", "Execution Time"))]
    return "; ".join([*times, f"first node {buffers[0] if buffers else '-'}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", default="calsync_profile_page")
    args = parser.parse_args()
    statement, values, state = captured(args.database)
    user = uuid.UUID(state["user"])
    nobody = {k: uuid.UUID(int=0) if v in (user, str(user)) else v for k, v in values.items()}
    url = state["url"].replace("postgresql+psycopg://", "postgresql://")
    for warmed in (False, True):
        for n in range(3):
            with psycopg.connect(url) as connection:
                if warmed:
                    print(f"  nobody's page first: {explain(connection, statement, nobody)}")
                for k in range(3):
                    label = "after nobody's" if warmed else "new connection"
                    print(f"{label} {n}, run {k + 1}: {explain(connection, statement, values)}")


if __name__ == "__main__":
    main()
