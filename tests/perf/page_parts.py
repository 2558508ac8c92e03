"""A page of 200's two own parts in one process: its statement with its rows
(`instance_pages.listed_rows`) and its body (`model_bodies.stored_bodies`, then
`json_body.list_body`). Prints figures only.

Run ``.venv/bin/python -m tests.perf.profile_page --seed-data --database D`` once (a
10,000-event month), then, from each tree to compare, alternating: ``cd TREE &&
PYTHONPATH=TREE /path/to/.venv/bin/python -m tests.perf.page_parts --database D``
(``python -m`` imports the package of the working directory). March 2026's first page
(201 rows, as a page of 200 reads them), each part the minimum of 7 x 300 calls of this
process's CPU (`time.process_time`); the machine is shared, so compare in alternating
rounds (decision IV2).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import calsync
from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.events import model_bodies
from calsync.store.db import api_pool
from calsync.store.instance_pages import Window, listed_rows
from calsync.web.json_body import list_body
from tests.perf.profile_page import _environment, _state_file

MARCH = Window(
    datetime(2026, 3, 1, tzinfo=UTC),
    datetime(2026, 4, 1, tzinfo=UTC),
    date(2026, 3, 1),
    date(2026, 4, 1),
)


def _least(work: Callable[[], Any]) -> float:
    """ms of CPU a call, the least of 7 x 300."""
    best = []
    for _ in range(7):
        started = time.process_time()
        for _ in range(300):
            work()
        best.append((time.process_time() - started) / 300 * 1000)
    return min(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    state = json.loads(_state_file(args.database).read_text())
    settings = Settings.from_env(_environment("http://127.0.0.1:9", state["url"], state))
    services = bootstrap(settings, pool=api_pool(4))
    user = uuid.UUID(state["user"])
    try:

        def rows() -> Any:
            with services.sessions() as session:
                return listed_rows(
                    session,
                    user,
                    MARCH,
                    limit=201,
                    after=None,
                    category=None,
                    calendar_id=None,
                    in_series=None,
                    alone=True,
                )

        found = rows()
        assert found is not None
        assert len(found) == 201, len(found)
        statement = _least(rows)
        body = _least(lambda: list_body(model_bodies.stored_bodies(found[:200]) or [], "x"))
        print(
            f"{os.path.dirname(calsync.__file__)}: page statement and rows {statement:.3f} ms, "
            f"stored bodies and list_body {body:.3f} ms; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    finally:
        services.close()


if __name__ == "__main__":
    main()
