"""The operations: what users do through calsync's API and what other clients do on Google.

`Operations.run(user, step)` performs step `step` of `user`'s sequence. Which operation
it is and all its random choices come from ``Random(f"{seed}:{user}:{step}")``, so a
seed fixes every user's sequence; what an operation finds to act on (an event to edit,
an instance to move) depends on what the system did so far, which is the product's
concurrency. Each acknowledged write goes into the `Ledger`.

Through calsync's API (`ApiSide`): create (always with an ``Idempotency-Key``, some
repeated with the same key and body), edit, delete, edit one instance (``scope=this``)
or split a series (``scope=following``), cancel an instance or end a series, reads of
every route, and probes of other users' ids. On Google as the editor (`GoogleSide`):
insert, edit, delete, move one instance, cancel one instance, change a rule; as the
user: add a calendar, remove one, share one read-only with another user or stop
sharing it.

Answers a user may legitimately get - 404 for an event deleted meanwhile, 403 for a
read-only calendar, 409 while their Google access is revoked - are counted;
anything else unexpected is kept as a problem for the report.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import Any

from googleapiclient.errors import HttpError

from calsync.emulator.testing import EmulatorControl
from tests.sim import bodies
from tests.sim.bodies import WINDOW
from tests.sim.clients import EDITOR, GoogleClients
from tests.sim.ledger import FIELDS, Ledger, Write
from tests.sim.observe import Sightings
from tests.sim.shapes import from_api, from_google
from tests.sim.world import SimCalendar, SimUser, World

API_OPERATIONS = {
    "create": 6,
    "edit": 5,
    "delete": 2,
    "edit_instance": 2,
    "split_series": 1,
    "cancel_instance": 1,
    "end_series": 1,
    "read": 3,
    "probe": 1,
}
GOOGLE_OPERATIONS = {
    "insert": 5,
    "edit": 5,
    "delete": 2,
    "move_instance": 2,
    "cancel_instance": 1,
    "change_rule": 1,
    "add_calendar": 0.4,
    "remove_calendar": 0.3,
    "share": 0.5,
}
RANGE = {"start_date": WINDOW[0].isoformat(), "end_date": WINDOW[1].isoformat()}
G_RANGE = {
    "timeMin": f"{WINDOW[0].isoformat()}T00:00:00Z",
    "timeMax": f"{WINDOW[1].isoformat()}T23:59:59Z",
}


def _fields(shape: dict[str, Any], names: Any = FIELDS) -> dict[str, Any]:
    return {name: shape[name] for name in names}


@dataclass(frozen=True)
class Step:
    """Which step of a user's sequence this is, and the ledger's clock."""

    number: int
    clock: Callable[[], float]


@dataclass
class Tally:
    """Counts of operations and answers, and the unexpected ones (thread-safe)."""

    done: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> None:
        with self._lock:
            self.done[name] += 1

    def problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)


class ApiSide:
    """A user's operations through calsync's HTTP API."""

    def __init__(
        self, world: World, ledger: Ledger, sightings: Sightings, tally: Tally, seed: int
    ) -> None:
        self.world = world
        self.ledger = ledger
        self.sightings = sightings
        self.tally = tally
        self.seed = seed
        self._calendars: dict[str, dict[str, dict[str, Any]]] = {}

    # -- calendars ------------------------------------------------------------------

    def calendars(self, user: SimUser, *, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """The user's calendars by local id (``GET /calendars``, cached)."""
        if fresh or user.email not in self._calendars:
            answer = user.client.get("/calendars")
            if answer.status_code == 200:
                self._calendars[user.email] = {c["id"]: c for c in answer.json()["calendars"]}
        return self._calendars.get(user.email, {})

    def google_calendar(self, user: SimUser, local_id: str) -> str | None:
        found = self.calendars(user).get(local_id) or self.calendars(user, fresh=True).get(local_id)
        return found["google_calendar_id"] if found else None

    def writable(self, user: SimUser, rng: Random) -> dict[str, Any] | None:
        fresh = rng.random() < 0.2
        listed = [c for c in self.calendars(user, fresh=fresh).values() if c["writable"]]
        listed.sort(key=lambda c: (not c["primary"], c["summary"]))
        return rng.choice(listed) if listed else None

    # -- recording ----------------------------------------------------------------------

    def _record(
        self,
        user: SimUser,
        item: dict[str, Any],
        kind: str,
        names: Any,
        sent: float,
        acked: float,
        *,
        reshapes: bool = False,
        event: str | None = None,
    ) -> None:
        calendar = self.google_calendar(user, item["calendar_id"])
        if calendar is None or not item.get("google_event_id"):
            self.tally.problem(f"{user.email}: cannot place {item['id']} on Google")
            return
        fields = _fields(from_api(item), names) if kind != "delete" else {}
        self.ledger.add(
            Write(
                "api",
                user.email,
                calendar,
                event or item["google_event_id"],
                kind,
                fields,
                sent,
                acked,
                reshapes_series=reshapes,
            )
        )

    def _expect(self, user: SimUser, what: str, status: int, allowed: tuple[int, ...]) -> bool:
        """True for 2xx; counts allowed refusals, keeps other answers as problems."""
        if 200 <= status < 300:
            return True
        if status == 409 and user.revoked:
            return False
        if status not in allowed:
            self.tally.problem(f"{user.email} {what}: unexpected {status}")
        else:
            self.tally.count(f"api refused {status}")
        return False

    # -- operations --------------------------------------------------------------------

    def create(self, user: SimUser, rng: Random, step: Step) -> None:
        calendar = self.writable(user, rng)
        if calendar is None:
            return
        body = bodies.api_event(rng, calendar_id=calendar["id"])
        key = f"sim-{self.seed}-{user.index}-{step.number}"
        headers = {"Idempotency-Key": key}
        sent = step.clock()
        answer = user.client.call("POST", "/events", json=body, headers=headers)
        acked = step.clock()
        if not self._expect(user, "create", answer.status_code, (404,)):
            return
        made = answer.json()
        self._record(user, made, "create", FIELDS, sent, acked)
        if rng.random() < 0.3:
            again = user.client.call("POST", "/events", json=body, headers=headers)
            self.tally.count("api repeated idempotency key")
            if again.status_code != answer.status_code or again.json()["id"] != made["id"]:
                self.tally.problem(
                    f"{user.email}: Idempotency-Key {key} repeated gave {again.status_code} "
                    f"{again.json().get('id')} instead of {made['id']}"
                )

    def _pick(
        self, user: SimUser, rng: Random, *, series: bool = False, expand: bool = False
    ) -> dict[str, Any] | None:
        calendar = self.writable(user, rng)
        if calendar is None:
            return None
        params: dict[str, Any] = {"calendar_id": calendar["id"]}
        if series:
            params["recurring"] = "true"
        if expand:
            params |= RANGE | {"expand": "true"}
        items = user.client.all_events(**params)
        if expand:
            items = [i for i in items if i["series_id"]]
        items.sort(key=lambda i: (i["start_time"], i["title"], i["id"]))
        return rng.choice(items) if items else None

    def edit(self, user: SimUser, rng: Random, step: Step) -> None:
        target = self._pick(user, rng)
        if target is None:
            return
        changes = bodies.api_change(rng, target)
        sent = step.clock()
        answer = user.client.call("PUT", f"/events/{target['id']}", json=changes)
        acked = step.clock()
        if self._expect(user, "edit", answer.status_code, (404,)):
            names = _really_changed(from_api(target), from_api(answer.json()), _changed(changes))
            reshapes = bool(target["recurrence"]) and ("start" in names)
            self._record(user, answer.json(), "update", names, sent, acked, reshapes=reshapes)

    def delete(self, user: SimUser, rng: Random, step: Step) -> None:
        target = self._pick(user, rng)
        if target is None:
            return
        sent = step.clock()
        answer = user.client.call("DELETE", f"/events/{target['id']}")
        acked = step.clock()
        if self._expect(user, "delete", answer.status_code, (404,)):
            self._record(user, target, "delete", (), sent, acked)

    def edit_instance(self, user: SimUser, rng: Random, step: Step) -> None:
        self._instance_write(user, rng, step, "PUT", "this")

    def split_series(self, user: SimUser, rng: Random, step: Step) -> None:
        self._instance_write(user, rng, step, "PUT", "following")

    def cancel_instance(self, user: SimUser, rng: Random, step: Step) -> None:
        self._instance_write(user, rng, step, "DELETE", "this")

    def end_series(self, user: SimUser, rng: Random, step: Step) -> None:
        self._instance_write(user, rng, step, "DELETE", "following")

    def _instance_write(
        self, user: SimUser, rng: Random, step: Step, method: str, scope: str
    ) -> None:
        instance = self._pick(user, rng, series=True, expand=True)
        if instance is None:
            return
        master_id = instance["google_event_id"].rsplit("_", 1)[0]
        first = scope == "following" and self._is_first(user, instance)
        changes = bodies.api_change(rng, instance) if method == "PUT" else None
        sent = step.clock()
        answer = user.client.call(
            method, f"/events/{instance['id']}", params={"scope": scope}, json=changes
        )
        acked = step.clock()
        if not self._expect(user, f"{method} scope={scope}", answer.status_code, (404, 422)):
            return
        names: list[str] = []
        if method == "PUT":
            after = from_api(answer.json())
            names = _really_changed(from_api(instance), after, _changed(changes or {}))
        if method == "DELETE" and scope == "this":
            self._record(user, instance, "delete", (), sent, acked)
        elif scope == "following" and (method == "DELETE" or first):
            # ends the series before the instance, or (from its first) all of it
            kind = "delete" if method == "DELETE" and first else "update"
            item = answer.json() if method == "PUT" else instance
            self._record(
                user,
                item,
                kind,
                names if method == "PUT" else (),
                sent,
                acked,
                reshapes=True,
                event=master_id,
            )
        elif scope == "this":
            self._record(user, answer.json(), "update", names, sent, acked)
        else:
            self._record(user, instance, "update", (), sent, acked, reshapes=True, event=master_id)
            self._record(user, answer.json(), "create", FIELDS, sent, acked)

    def _is_first(self, user: SimUser, instance: dict[str, Any]) -> bool:
        master = user.client.get(f"/events/{instance['series_id']}")
        return master.status_code == 200 and (
            master.json()["start_time"] == instance["original_start_time"]
        )

    def read(self, user: SimUser, rng: Random, step: Step) -> None:
        choice = rng.randrange(5)
        if choice == 0:
            user.client.all_events(**RANGE, expand="true")
        elif choice == 1:
            user.client.get("/sync/logs", limit=50)
        elif choice == 2:
            user.client.get("/calendars")
        elif choice == 3:
            found = self._pick(user, rng)
            if found is not None:
                user.client.get(f"/events/{found['id']}")
        else:
            user.client.get("/events", **RANGE, recurring=rng.choice(["true", "false"]))
        self.tally.count("api read")

    def probe(self, user: SimUser, rng: Random, step: Step) -> None:
        others = [u for u in self.world.users if u is not user]
        if not others:
            return
        other = rng.choice(others)
        for kind in ("event", "calendar"):
            ids = self.sightings.known_ids(other.email, kind)
            if not ids:
                continue
            target = rng.choice(ids)
            if kind == "event":
                method = rng.choice(["GET", "PUT", "DELETE"])
                body = {"title": "probe"} if method == "PUT" else None
                answer = user.client.call(method, f"/events/{target}", json=body)
                self.sightings.probe(
                    user.email, f"{method} /events/{target} of {other.email}", answer.status_code
                )
            else:
                for method, path, params in (
                    ("POST", "/sync", {"calendar_id": target}),
                    ("GET", "/sync/logs", {"calendar_id": target}),
                    ("PATCH", f"/calendars/{target}", None),
                    ("GET", "/events", {"calendar_id": target}),
                ):
                    answer = user.client.call(
                        method,
                        path,
                        params=params,
                        json={"conflict_policy": None} if method == "PATCH" else None,
                    )
                    body = answer.json() if answer.content else {}
                    shown = body.get("events") or body.get("logs") or body.get("queued")
                    status = 404 if answer.status_code == 200 and not shown else answer.status_code
                    if user.revoked and answer.status_code == 409:
                        status = 404
                    self.sightings.probe(
                        user.email, f"{method} {path} {params} of {other.email}", status
                    )
        self.tally.count("api probe")


def _really_changed(before: dict[str, Any], after: dict[str, Any], given: set[str]) -> list[str]:
    """The fields of `given` a write changed: one that sets a field to the value it had
    is no write of that field (a three-way merge cannot tell it from no change at all,
    and neither can anyone reading the event)."""
    return [n for n in FIELDS if n in given and before[n] != after[n]]


def _changed(changes: dict[str, Any]) -> set[str]:
    names = set(changes) & {"title", "description", "location"}
    if "start_time" in changes:
        names |= {"start", "end"}
    return names


class GoogleSide:
    """Other Google clients: the editor's event writes, the users' calendar changes."""

    def __init__(
        self,
        world: World,
        ledger: Ledger,
        google: GoogleClients,
        control: EmulatorControl,
        tally: Tally,
    ) -> None:
        self.world = world
        self.ledger = ledger
        self.google = google
        self.control = control
        self.tally = tally
        self._lock = threading.Lock()

    def _calendar(self, user: SimUser, rng: Random) -> SimCalendar | None:
        owned = self.world.owned(user.email)
        return rng.choice(owned) if owned else None

    def _record(
        self,
        calendar: str,
        resource: dict[str, Any],
        kind: str,
        names: Any,
        sent: float,
        acked: float,
        *,
        reshapes: bool = False,
        event: str | None = None,
    ) -> None:
        fields = _fields(from_google(resource), names) if kind != "delete" else {}
        self.ledger.add(
            Write(
                "google",
                EDITOR,
                calendar,
                event or resource["id"],
                kind,
                fields,
                sent,
                acked,
                reshapes_series=reshapes,
            )
        )

    def _call(self, what: str, request: Any) -> Any:
        """Run a request; None for a 404/410 (the target went meanwhile)."""
        try:
            return request.execute(num_retries=3)
        except HttpError as err:
            if err.resp.status in (404, 410):
                self.tally.count(f"google refused {err.resp.status}")
                return None
            self.tally.problem(f"google {what}: {err.resp.status} {err}")
            return None

    def _events(self, calendar: SimCalendar, *, series: bool = False) -> list[dict[str, Any]]:
        listing = self._call(
            "list",
            self.google.editor.events().list(
                calendarId=calendar.google_id, singleEvents=False, maxResults=2500
            ),
        )
        if listing is None:
            return []
        items = [
            i
            for i in listing.get("items", [])
            if i.get("status") != "cancelled"
            and "recurringEventId" not in i
            and (bool(i.get("recurrence")) if series else True)
        ]
        items.sort(key=lambda i: i["id"])
        return items

    def insert(self, user: SimUser, rng: Random, step: Step) -> None:
        calendar = self._calendar(user, rng)
        if calendar is None:
            return
        body = bodies.google_event(rng)
        sent = step.clock()
        made = self._call(
            "insert", self.google.editor.events().insert(calendarId=calendar.google_id, body=body)
        )
        if made is not None:
            self._record(calendar.google_id, made, "create", FIELDS, sent, step.clock())

    def edit(self, user: SimUser, rng: Random, step: Step) -> None:
        calendar = self._calendar(user, rng)
        events = self._events(calendar) if calendar else []
        if not events or calendar is None:
            return
        target = rng.choice(events)
        patch = bodies.google_change(rng, target)
        sent = step.clock()
        made = self._call(
            "patch",
            self.google.editor.events().patch(
                calendarId=calendar.google_id, eventId=target["id"], body=patch
            ),
        )
        if made is not None:
            names = {
                "summary": ["title"],
                "description": ["description"],
                "location": ["location"],
                "start": ["start", "end"],
            }
            given = {n for key in patch if key in names for n in names[key]}
            changed = _really_changed(from_google(target), from_google(made), given)
            reshapes = bool(target.get("recurrence")) and "start" in patch
            self._record(
                calendar.google_id, made, "update", changed, sent, step.clock(), reshapes=reshapes
            )

    def delete(self, user: SimUser, rng: Random, step: Step) -> None:
        calendar = self._calendar(user, rng)
        events = self._events(calendar) if calendar else []
        if not events or calendar is None:
            return
        target = rng.choice(events)
        sent = step.clock()
        request = self.google.editor.events().delete(
            calendarId=calendar.google_id, eventId=target["id"]
        )
        if self._call("delete", request) is not None:
            self._record(calendar.google_id, target, "delete", (), sent, step.clock())

    def _instance(
        self, user: SimUser, rng: Random
    ) -> tuple[SimCalendar, dict[str, Any], dict[str, Any]] | None:
        calendar = self._calendar(user, rng)
        series = self._events(calendar, series=True) if calendar else []
        if not series or calendar is None:
            return None
        master = rng.choice(series)
        listing = self._call(
            "instances",
            self.google.editor.events().instances(
                calendarId=calendar.google_id, eventId=master["id"], **G_RANGE
            ),
        )
        instances = [i for i in (listing or {}).get("items", []) if i.get("status") != "cancelled"]
        if not instances:
            return None
        return calendar, master, rng.choice(instances)

    def move_instance(self, user: SimUser, rng: Random, step: Step) -> None:
        found = self._instance(user, rng)
        if found is None:
            return
        calendar, _master, instance = found
        sent = step.clock()
        made = self._call(
            "move",
            self.google.editor.events().patch(
                calendarId=calendar.google_id,
                eventId=instance["id"],
                body=bodies.google_shifted(rng, instance),
            ),
        )
        if made is not None:
            self._record(calendar.google_id, made, "update", ("start", "end"), sent, step.clock())

    def cancel_instance(self, user: SimUser, rng: Random, step: Step) -> None:
        found = self._instance(user, rng)
        if found is None:
            return
        calendar, _master, instance = found
        sent = step.clock()
        request = self.google.editor.events().delete(
            calendarId=calendar.google_id, eventId=instance["id"]
        )
        if self._call("cancel", request) is not None:
            self._record(calendar.google_id, instance, "delete", (), sent, step.clock())

    def change_rule(self, user: SimUser, rng: Random, step: Step) -> None:
        calendar = self._calendar(user, rng)
        series = self._events(calendar, series=True) if calendar else []
        if not series or calendar is None:
            return
        master = rng.choice(series)
        sent = step.clock()
        made = self._call(
            "rule",
            self.google.editor.events().patch(
                calendarId=calendar.google_id,
                eventId=master["id"],
                body={"recurrence": bodies.google_rule(rng, master)},
            ),
        )
        if made is not None:
            self._record(calendar.google_id, made, "update", (), sent, step.clock(), reshapes=True)

    def add_calendar(self, user: SimUser, rng: Random, step: Step) -> None:
        if user.revoked:
            return
        owned = self.google.service(user.email)
        made = self._call(
            "calendars.insert", owned.calendars().insert(body={"summary": f"extra {step.number}"})
        )
        if made is None:
            return
        self.control.share(made["id"], EDITOR, "writer")
        self.world.add(SimCalendar(made["id"], user.email, made["summary"]))
        self.tally.count("google calendar added")

    def remove_calendar(self, user: SimUser, rng: Random, step: Step) -> None:
        removable = [c for c in self.world.owned(user.email) if not c.primary]
        if user.revoked or not removable:
            return
        calendar = rng.choice(removable)
        owned = self.google.service(user.email)
        with self.world.lock:
            calendar.removed = True  # before: writes racing the removal are not owed
        self._call("calendars.delete", owned.calendars().delete(calendarId=calendar.google_id))
        self.tally.count("google calendar removed")

    def share(self, user: SimUser, rng: Random, step: Step) -> None:
        calendar = self._calendar(user, rng)
        others = [u.email for u in self.world.users if u is not user]
        if calendar is None or not others:
            return
        reader = rng.choice(others)
        role = "none" if reader in calendar.readers and rng.random() < 0.5 else "reader"
        self.control.share(calendar.google_id, reader, role)
        self.world.share(calendar.google_id, reader, reader=role == "reader")
        self.tally.count(f"google share {role}")


class Operations:
    """Runs users' steps (module docstring); `clock` is the ledger's (monotonic) time."""

    def __init__(self, api: ApiSide, google: GoogleSide, seed: int) -> None:
        self.api = api
        self.google = google
        self.seed = seed
        self.clock = time.monotonic

    def run(self, user: SimUser, step: int) -> str:
        rng = Random(f"{self.seed}:{user.index}:{step}")
        side = self.api if rng.random() < 0.5 else self.google
        weights = API_OPERATIONS if side is self.api else GOOGLE_OPERATIONS
        name = rng.choices(list(weights), weights=list(weights.values()))[0]
        label = f"{'api' if side is self.api else 'google'} {name}"
        getattr(side, name)(user, rng, Step(step, self.clock))
        self.google.tally.count(label)
        return label
