"""After a failed run: everything needed to understand it, written to one JSON file.

`dump` writes, for each calendar, every event resource Google holds (deleted ones
included) and, for each user, ``GET /events`` (plain and expanded), ``GET /calendars``
and the sync log, plus the ledger of acknowledged writes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from calsync.bootstrap import Services
from calsync.store.tables import Event as EventRow
from calsync.store.tables import OutboxEntry
from tests.sim.clients import GoogleClients
from tests.sim.ledger import Ledger
from tests.sim.operations import RANGE
from tests.sim.world import World


def dump(
    world: World, google: GoogleClients, ledger: Ledger, path: Path, services: Services | None
) -> Path:
    data: dict[str, Any] = {"google": {}, "calsync": {}, "ledger": [], "unsynced": []}
    if services is not None:
        data["unsynced"] = unsynced_rows(services)
    for calendar in world.calendars.values():
        if calendar.removed:
            continue
        service = google.service(calendar.owner)
        data["google"][calendar.google_id] = (
            service.events()
            .list(calendarId=calendar.google_id, showDeleted=True, maxResults=2500)
            .execute(num_retries=3)["items"]
        )
    for user in world.users:
        client = user.client
        logs: list[Any] = []
        cursor = None
        for _ in range(20):
            page = client.get("/sync/logs", limit=200, **({"cursor": cursor} if cursor else {}))
            logs += page.json()["logs"]
            cursor = page.json().get("next_cursor")
            if not cursor:
                break
        data["calsync"][user.email] = {
            "calendars": client.get("/calendars").json(),
            "events": client.all_events(),
            "expanded": client.all_events(**RANGE, expand="true"),
            "logs": logs,
        }
    data["ledger"] = [dataclasses.asdict(w) for w in ledger.writes]
    path.write_text(json.dumps(data, indent=1, default=str))
    return path


def unsynced_rows(services: Services) -> list[dict[str, Any]]:
    """Events not ``synced`` with their push lease and outbox rows (read from the
    database: this is for a person reading the dump, not for a verdict)."""
    found = []
    with services.sessions() as session:
        rows = session.scalars(sa.select(EventRow).where(EventRow.sync_state != "synced"))
        for row in rows:
            outbox = session.scalars(sa.select(OutboxEntry).where(OutboxEntry.event_id == row.id))
            found.append(
                {
                    "google_event_id": row.google_event_id,
                    "sync_state": row.sync_state,
                    "version": row.version,
                    "push_lease_until": row.push_lease_until,
                    "outbox": [
                        {
                            "id": o.id,
                            "operation": o.operation,
                            "status": o.status,
                            "attempts": o.attempts,
                            "due_at": o.due_at,
                            "last_error": o.last_error,
                        }
                        for o in outbox
                    ],
                }
            )
    return found
