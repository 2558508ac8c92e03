"""The story of each lost write, printed with the verdict: CI keeps no dump.

For every event with a lost write (`lost_keys` reads the keys off `judge`'s lines),
`explain` gives, on one clock (UTC wall time, to the millisecond):

- every acknowledged write of the event's family (the series and its instances) from
  the ledger: when it was sent and answered, by whom, and the fields it set;
- calsync's sync log rows of the event, as its owner reads them (``GET /sync/logs``):
  its pushes and merges, and for a merge which side each field came from (``!`` marks
  a conflict the policy decided) with both versions' times and update stamps.

That is what it took to find decision J1 (a lost all-day move) from a run whose dump was
gone; with it, the next lost write explains itself in the CI log.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tests.sim.ledger import Ledger, Write
from tests.sim.world import World

#: At most this many log pages of 200 rows are read per user.
LOG_PAGES = 10


def lost_keys(lines: Iterable[str]) -> list[tuple[str, str]]:
    """The (calendar, event) Google ids of `judge`'s lines (``"<calendar> <event>: ..."``),
    once each, in order."""
    keys: list[tuple[str, str]] = []
    for line in lines:
        calendar, _, rest = line.partition(" ")
        event = rest.split(":", 1)[0]
        if (calendar, event) not in keys:
            keys.append((calendar, event))
    return keys


def explain(world: World, ledger: Ledger, keys: Iterable[tuple[str, str]]) -> list[str]:
    """The story (module docstring) of each event of `keys`, as report lines."""
    offset = time.time() - time.monotonic()  # monotonic ledger times to wall-clock
    out: list[str] = []
    for calendar, event in keys:
        writes = [w for w in ledger.writes if w.calendar == calendar]
        family = next((w.family for w in writes if w.event == event), event)
        out.append(f"{calendar} {event}: its writes, then calsync's log of it")
        out += [_write_line(w, offset) for w in sorted(writes, key=lambda w: w.sent)
                if w.family == family]  # fmt: skip
        try:
            out += _log_lines(world, calendar, event)
        except Exception as err:  # the story must not hide the verdict
            out.append(f"  (calsync's log unread: {type(err).__name__}: {err})")
    return out


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S.%f")[:-3]


def _write_line(write: Write, offset: float) -> str:
    which = "" if write.event == write.family else f" instance {write.event}"
    return (
        f"  {_clock(write.sent + offset)}-{_clock(write.acked + offset)} "
        f"{write.side}:{write.who} {write.kind}{which} {dict(write.fields)}"
        + (" (reshapes the series)" if write.reshapes_series else "")
    )


def _log_lines(world: World, calendar: str, event: str) -> list[str]:
    owner = world.user(world.calendars[calendar].owner)
    local = [e["id"] for e in owner.client.all_events() if e["google_event_id"] == event]
    if not local:
        return [f"  (not in {owner.email}'s GET /events)"]
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(LOG_PAGES):
        page = owner.client.get("/sync/logs", limit=200, **({"cursor": cursor} if cursor else {}))
        rows += [r for r in page.json()["logs"] if r["event_id"] == local[0]]
        cursor = page.json().get("next_cursor")
        if not cursor:
            break
    return [_log_line(row) for row in reversed(rows)]


def _log_line(row: dict[str, Any]) -> str:
    moment = datetime.fromisoformat(row["time"]).astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]
    line = f"  {moment} calsync {row['kind']} {row['status']}: {row['message']}"
    details = row.get("details") or {}
    if row["kind"] == "conflict" and isinstance(details, dict):
        chosen = ", ".join(
            f"{f['field']}<-{f['chosen']}{'!' if f['conflict'] else ''}"
            for f in details.get("fields", [])
        )
        line += f" [{chosen}] local {_version(details.get('local'))}"
        line += f" remote {_version(details.get('remote'))}"
    return line


def _version(document: Any) -> str:
    if not isinstance(document, dict):
        return "?"
    keys = ("title", "start", "end", "timezone", "updated")
    return str({k: document.get(k) for k in keys})
