"""What every fault scenario reports: events lost and duplicate Google writes.

*Lost* counts every way a change can go missing once the faults are healed:
an event only on one side, an event whose fields differ between the store and Google,
an event the scenario wrote whose final state is not what it wrote last, and a local
event that never reached ``synced`` (its change is stuck or failed).

*Duplicate Google writes* counts writes that created something twice: more than one
Google event carrying the same ``calsync_id``, and successful inserts by calsync beyond
the events it created (deterministic ids turn a retried insert into a 409, so a second
successful insert would be a second copy). Retried patches of the same state are
idempotent and only reported as figures.

:func:`report` prints one line per scenario (also gathered for the terminal summary by
``tests/faults/conftest.py``) and asserts both numbers are 0.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from calsync.domain.models import Event
from calsync.providers.google.ids import google_event_id
from calsync.store.events import attendees_by_event, to_event
from calsync.store.tables import Calendar
from calsync.store.tables import Event as EventRow
from tests.integration.sync.conftest import SyncStack, _comparable

#: The events collection (insert) and one event (patch, update, delete) of the Calendar API.
COLLECTION = re.compile(r"^/calendar/v3/calendars/[^/]+/events$")
ONE_EVENT = re.compile(r"^/calendar/v3/calendars/[^/]+/events/(?!watch$)[^/]+$")

REPORTS: list[Verdict] = []


@dataclass
class Verdict:
    scenario: str
    lost: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    writes: dict[str, int] = field(default_factory=dict)
    compared: int = 0

    def line(self) -> str:
        figures = " ".join(f"{k}={v}" for k, v in sorted(self.writes.items()))
        return (
            f"[faults] {self.scenario}: events compared={self.compared} lost={self.lost} "
            f"duplicate Google writes={self.duplicates} ({figures})"
        )


def local_view(stack: SyncStack, google_id: str) -> tuple[dict[str, Event], list[str]]:
    """The live local events of a calendar by Google id, and the problems of rows that
    are not ``synced`` (pending, error or conflict after healing = a change stuck)."""
    with stack.services.sessions() as session:
        calendar = session.scalar(
            sa.select(Calendar).where(
                Calendar.user_id == stack.user_id, Calendar.provider_calendar_id == google_id
            )
        )
        if calendar is None:
            return {}, [f"calendar {google_id} is not stored"]
        rows = list(session.scalars(sa.select(EventRow).where(EventRow.calendar_id == calendar.id)))
        attendees = attendees_by_event(session, [r.id for r in rows])
    stuck = [
        f"{r.google_event_id} ({r.title!r}) is {r.sync_state}: {r.sync_error}"
        for r in rows
        if r.sync_state != "synced"
    ]
    live = {
        str(r.google_event_id): _comparable(to_event(r, attendees.get(r.id, ())))
        for r in rows
        if r.deleted_at is None
    }
    return live, stuck


def google_resources(stack: SyncStack, google_id: str, email: str) -> list[dict[str, Any]]:
    """Every event resource Google holds for the calendar, deleted ones included (their
    full resource: listings show a tombstone as a stub, ``events.get`` shows it all)."""
    service = stack.google_as(email)
    found: list[dict[str, Any]] = []
    page_token = None
    while True:
        answer = (
            service.events()
            .list(
                calendarId=google_id,
                showDeleted=True,
                singleEvents=False,
                maxResults=2500,
                pageToken=page_token,
            )
            .execute(num_retries=3)
        )
        for item in answer.get("items", []):
            if item.get("status") == "cancelled" and "extendedProperties" not in item:
                item = (
                    service.events()
                    .get(calendarId=google_id, eventId=item["id"])
                    .execute(num_retries=3)
                )
            found.append(item)
        page_token = answer.get("nextPageToken")
        if not page_token:
            return found


def calsync_writes(stack: SyncStack, calsync_user: str) -> Counter[str]:
    """calsync's Calendar API writes on events, from the emulator's request log, as
    ``insert_200``, ``insert_409``, ``patch_412``, ... (a status ``None`` = reset)."""
    counts: Counter[str] = Counter()
    names = {"PATCH": "patch", "PUT": "update", "DELETE": "delete"}
    for entry in stack.control.requests(user=calsync_user):
        method, path = entry["method"], entry["path"]
        if method == "POST" and COLLECTION.match(path):
            name = "insert"
        elif method in names and ONE_EVENT.match(path):
            name = names[method]
        else:
            continue
        counts[f"{name}_{entry['status'] or 'reset'}"] += 1
    return counts


def judge(
    stack: SyncStack,
    scenario: str,
    *,
    calendar: str,
    calsync_user: str,
    expected: Mapping[str, str | None] | None = None,
    present: Iterable[str] = (),
) -> Verdict:
    """Compare the store with Google for `calendar` after healing.

    `expected` maps Google ids the scenario wrote to the title each must end with
    (`None`: must be gone); `present` lists ids that must exist on both sides, whatever
    their title (where merges decide it). `calsync_user` is the email calsync acts as, to tell its
    writes from the other clients' in the request log.
    """
    verdict = Verdict(scenario)
    local, stuck = local_view(stack, calendar)
    remote = stack.remote_events(calendar)
    verdict.compared = len(set(local) | set(remote))
    for google_id in sorted(set(remote) - set(local)):
        verdict.problems.append(f"on Google only: {google_id} ({remote[google_id].title!r})")
    for google_id in sorted(set(local) - set(remote)):
        verdict.problems.append(f"in the store only: {google_id} ({local[google_id].title!r})")
    for google_id in sorted(set(local) & set(remote)):
        if local[google_id] != remote[google_id]:
            verdict.problems.append(
                f"differs: {google_id} store={local[google_id]} google={remote[google_id]}"
            )
    for google_id, title in sorted((expected or {}).items()):
        held = [side.get(google_id) for side in (local, remote)]
        titles = {event.title if event is not None else None for event in held}
        if titles != {title}:
            verdict.problems.append(f"expected {google_id} as {title!r}, found {titles}")
    for google_id in sorted(set(present) - (set(local) & set(remote))):
        verdict.problems.append(f"expected {google_id} on both sides")
    verdict.problems += [f"not synced: {p}" for p in stuck]
    verdict.lost = len(verdict.problems)

    resources = google_resources(stack, calendar, calsync_user)
    copies = Counter(
        str(r["extendedProperties"]["private"]["calsync_id"])
        for r in resources
        if r.get("extendedProperties", {}).get("private", {}).get("calsync_id")
    )
    extra_copies = sum(n - 1 for n in copies.values() if n > 1)
    created_by_calsync = {r["id"] for r in resources if _made_by_calsync(r)}
    writes = calsync_writes(stack, calsync_user)
    extra_inserts = max(0, writes["insert_200"] - len(created_by_calsync))
    verdict.duplicates = extra_copies + extra_inserts
    if extra_copies:
        verdict.problems.append(f"{extra_copies} extra Google copies of calsync events")
    if extra_inserts:
        verdict.problems.append(
            f"{writes['insert_200']} successful inserts for {len(created_by_calsync)} events"
        )
        verdict.problems += [
            f"  google {r['id']} {r.get('summary')!r} {r.get('status')} "
            f"calsync_id={r.get('extendedProperties', {}).get('private', {}).get('calsync_id')}"
            for r in resources
            if r["id"] not in created_by_calsync
        ]
    verdict.writes = dict(writes) | {"created_by_calsync": len(created_by_calsync)}
    return verdict


def _made_by_calsync(resource: Mapping[str, Any]) -> bool:
    """Inserted by calsync: its id is the one calsync derives from the ``calsync_id`` it
    carries (other clients' events get random ids; calsync may tag them later)."""
    calsync_id = resource.get("extendedProperties", {}).get("private", {}).get("calsync_id")
    try:
        return calsync_id is not None and google_event_id(uuid.UUID(calsync_id)) == resource["id"]
    except ValueError:
        return False


def report(verdict: Verdict) -> None:
    """Print the scenario's figures and fail unless nothing was lost or duplicated."""
    REPORTS.append(verdict)
    print(verdict.line())
    for problem in verdict.problems:
        print(f"    {problem}")
    assert verdict.lost == 0, verdict.problems
    assert verdict.duplicates == 0, verdict.problems
