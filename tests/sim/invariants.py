"""The invariants, checked through public interfaces once the system is quiet.

- `compare_user`: a user's ``GET /events`` - without ``expand`` (series as masters,
  changed instances as their own events) and expanded over `WINDOW` - equals exactly what
  Google holds in that user's calendar list (read with googleapiclient as the user:
  ``singleEvents=false``, and ``singleEvents=true`` over the same range), event by event
  and field by field; and every event is ``synced``.
- `duplicates`: Google holds no second copy of anything calsync wrote: calsync's
  successful inserts in each calendar (the emulator's request log, calsync acting as the
  owner) are no more than the events it created there (ids derived from their
  ``calsync_id``, deleted ones included), and no two Google events carry one
  ``calsync_id``.
- lost writes: `tests.sim.ledger.judge` against the Google side read here.
- cross-user leaks: `tests.sim.observe.Sightings.leaks`.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from calsync.emulator.testing import EmulatorControl
from calsync.providers.google.ids import google_event_id
from tests.sim.bodies import WINDOW
from tests.sim.clients import EDITOR, GoogleClients
from tests.sim.operations import G_RANGE, RANGE
from tests.sim.shapes import Shape, differences, from_api, from_google
from tests.sim.world import SimUser, World

INSERT = re.compile(r"^/calendar/v3/calendars/([^/]+)/events$")
Key = tuple[str, str]  # (Google calendar id, Google event id)


@dataclass
class GoogleView:
    """What Google holds in the calendars a user sees, as shapes by key."""

    masters: dict[Key, Shape] = field(default_factory=dict)
    expanded: dict[Key, Shape] = field(default_factory=dict)
    calendars: list[str] = field(default_factory=list)


def _pages(request_of: Any, **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        answer = request_of(**query, **({"pageToken": token} if token else {})).execute(
            num_retries=3
        )
        items += answer.get("items", [])
        token = answer.get("nextPageToken")
        if not token:
            return items


def google_view(google: GoogleClients, email: str) -> GoogleView:
    """Read as `email`: their calendar list (but free/busy-only calendars) and events."""
    service = google.service(email)
    view = GoogleView()
    for entry in _pages(service.calendarList().list):
        if entry.get("accessRole") == "freeBusyReader":
            continue
        calendar = entry["id"]
        view.calendars.append(calendar)
        for item in _pages(service.events().list, calendarId=calendar, maxResults=2500):
            if item.get("status") != "cancelled":
                view.masters[calendar, item["id"]] = from_google(item)
        for item in _pages(
            service.events().list,
            calendarId=calendar,
            singleEvents=True,
            maxResults=2500,
            **G_RANGE,
        ):
            if item.get("status") != "cancelled":
                view.expanded[calendar, item["id"]] = from_google(item)
    return view


@dataclass
class UserCheck:
    """One user's comparison: the differences (those `tolerated` apart, kept as
    `known`), and how many events are still not ``synced``."""

    email: str
    problems: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    unsynced: int = 0
    compared: int = 0

    @property
    def equal(self) -> bool:
        return not self.problems and not self.unsynced

    def note(self, key: Key | None, text: str, tolerated: Callable[[Key], bool]) -> None:
        (self.known if key is not None and tolerated(key) else self.problems).append(text)


def _api_side(
    items: Iterable[dict[str, Any]],
    calendars: dict[str, str],
    check: UserCheck,
    what: str,
    tolerated: Callable[[Key], bool],
) -> dict[Key, Shape]:
    shown: dict[Key, Shape] = {}
    for item in items:
        calendar = calendars.get(item["calendar_id"])
        if calendar is None or not item["google_event_id"]:
            check.problems.append(f"{what}: {item['id']} has no Google calendar or id")
            continue
        key = (calendar, item["google_event_id"])
        if item["sync_state"] != "synced":
            if tolerated(key):
                check.known.append(f"{what}: {key} {item['sync_state']}: {item['sync_error']}")
            else:
                check.unsynced += 1
        if key in shown:
            check.problems.append(f"{what}: {key} shown twice")
        if item["status"] != "cancelled":
            shown[key] = from_api(item)
    return shown


def _diff(
    expected: dict[Key, Shape],
    actual: dict[Key, Shape],
    what: str,
    check: UserCheck,
    tolerated: Callable[[Key], bool],
) -> None:
    for key in sorted(expected.keys() - actual.keys()):
        check.note(key, f"{what}: only on Google {key} {expected[key]}", tolerated)
    for key in sorted(actual.keys() - expected.keys()):
        check.note(key, f"{what}: only in calsync {key} {actual[key]}", tolerated)
    for key in sorted(expected.keys() & actual.keys()):
        for difference in differences(expected[key], actual[key]):
            check.note(key, f"{what}: {key} {difference}", tolerated)


def compare_user(
    user: SimUser, view: GoogleView, tolerated: Callable[[Key], bool] = lambda key: False
) -> UserCheck:
    """`user`'s ``GET /events`` against `view` (see the module docstring); differences
    on keys `tolerated` says are known are kept apart."""
    check = UserCheck(user.email)
    client = user.client
    answer = client.get("/calendars")
    listed = {c["id"]: c["google_calendar_id"] for c in answer.json()["calendars"]}
    if sorted(listed.values()) != sorted(view.calendars):
        check.problems.append(
            f"calendars: calsync {sorted(listed.values())} google {sorted(view.calendars)}"
        )
    plain = _api_side(client.all_events(), listed, check, "list", tolerated)
    expanded = _api_side(
        client.all_events(**RANGE, expand="true"), listed, check, "expanded", tolerated
    )
    _diff(view.masters, plain, "list", check, tolerated)
    _diff(view.expanded, expanded, "expanded", check, tolerated)
    check.compared = len(view.masters) + len(view.expanded)
    return check


@dataclass
class Duplicates:
    extra_inserts: int = 0
    shared_ids: int = 0
    problems: list[str] = field(default_factory=list)
    inserts: int = 0

    @property
    def count(self) -> int:
        return self.extra_inserts + self.shared_ids


def duplicates(world: World, google: GoogleClients, control: EmulatorControl) -> Duplicates:
    """See the module docstring; removed calendars are left out (their events are gone)."""
    found = Duplicates()
    inserts: Counter[str] = Counter()
    for entry in control.requests(method="POST", path_regex=INSERT.pattern, status="200"):
        match = INSERT.match(entry["path"])
        if match and entry["user"] != EDITOR:
            inserts[match.group(1)] += 1
    found.inserts = sum(inserts.values())
    carried: Counter[str] = Counter()
    for calendar in world.calendars.values():
        if calendar.removed:
            continue
        service = google.service(calendar.owner)
        created = 0
        for item in _pages(
            service.events().list,
            calendarId=calendar.google_id,
            showDeleted=True,
            maxResults=2500,
        ):
            if item.get("status") == "cancelled" and "extendedProperties" not in item:
                item = (
                    service.events()
                    .get(calendarId=calendar.google_id, eventId=item["id"])
                    .execute(num_retries=3)
                )
            calsync_id = item.get("extendedProperties", {}).get("private", {}).get("calsync_id")
            if calsync_id is None or "recurringEventId" in item:
                continue  # a changed instance carries its series' properties, as on Google
            carried[calsync_id] += 1
            if _derived(calsync_id) == item["id"]:
                created += 1
        extra = inserts[calendar.google_id] - created
        if extra > 0:
            found.extra_inserts += extra
            found.problems.append(
                f"{calendar.google_id}: {inserts[calendar.google_id]} inserts by calsync "
                f"for {created} events it created"
            )
    for calsync_id, copies in carried.items():
        if copies > 1:
            found.shared_ids += copies - 1
            found.problems.append(f"calsync_id {calsync_id} on {copies} Google events")
    return found


def _derived(calsync_id: str) -> str | None:
    try:
        return google_event_id(uuid.UUID(calsync_id))
    except ValueError:
        return None


def final_google(world: World, google: GoogleClients) -> dict[Key, Shape]:
    """Every live event and changed instance in the live calendars, read as the owners."""
    final: dict[Key, Shape] = {}
    for calendar in world.calendars.values():
        if calendar.removed:
            continue
        service = google.service(calendar.owner)
        for item in _pages(service.events().list, calendarId=calendar.google_id, maxResults=2500):
            if item.get("status") != "cancelled":
                final[calendar.google_id, item["id"]] = from_google(item)
    return final


def window_note() -> str:
    return f"{WINDOW[0]}..{WINDOW[1]}"
