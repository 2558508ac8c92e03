"""Who exists in the simulation: users, their calendars on Google, and who sees what.

Setup (`populate`): user *i* is ``u<i>@sim.example``; every user has a primary
calendar; even users (all of them when there are fewer than 4) also own a *team*
calendar; each user is a reader of the next owner's team calendar. So each user sees
2 or 3 calendars, one of them shared read-only by another user. The editor (the other
Google client) is a writer on every calendar a user owns; a few events are already in
each before anyone signs in.

The world changes during the run (calendars added, removed, shared and unshared);
`visible` and `ever_visible` answer what a user sees now and ever saw - the latter is
what the leak check allows a user's answers to mention.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from calsync.emulator.testing import EmulatorControl, new_batch
from tests.sim import bodies
from tests.sim.clients import EDITOR, ApiClient, GoogleClients
from tests.sim.ledger import FIELDS, Ledger, Write
from tests.sim.shapes import from_google


@dataclass
class SimCalendar:
    google_id: str
    owner: str
    summary: str
    readers: set[str] = field(default_factory=set)
    primary: bool = False
    removed: bool = False


@dataclass
class SimUser:
    index: int
    email: str
    api: ApiClient | None = None
    user_id: str = ""
    revoked: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def client(self) -> ApiClient:
        assert self.api is not None, f"{self.email} is not signed in"
        return self.api


@dataclass
class World:
    users: list[SimUser]
    calendars: dict[str, SimCalendar] = field(default_factory=dict)
    seen_by: dict[str, set[str]] = field(default_factory=dict)  # email -> calendars ever
    lock: threading.RLock = field(default_factory=threading.RLock)

    def user(self, email: str) -> SimUser:
        return next(u for u in self.users if u.email == email)

    def owned(self, email: str) -> list[SimCalendar]:
        """Live calendars `email` owns, primary first, in creation order."""
        with self.lock:
            return [c for c in self.calendars.values() if c.owner == email and not c.removed]

    def visible(self, email: str) -> list[SimCalendar]:
        with self.lock:
            return [
                c
                for c in self.calendars.values()
                if not c.removed and (c.owner == email or email in c.readers)
            ]

    def ever_visible(self, email: str) -> set[str]:
        with self.lock:
            return set(self.seen_by.get(email, set()))

    def add(self, calendar: SimCalendar) -> None:
        with self.lock:
            self.calendars[calendar.google_id] = calendar
            self._saw(calendar.owner, calendar.google_id)
            for reader in calendar.readers:
                self._saw(reader, calendar.google_id)

    def share(self, google_id: str, email: str, reader: bool) -> None:
        with self.lock:
            calendar = self.calendars[google_id]
            if reader:
                calendar.readers.add(email)
                self._saw(email, google_id)
            else:
                calendar.readers.discard(email)

    def _saw(self, email: str, google_id: str) -> None:
        self.seen_by.setdefault(email, set()).add(google_id)

    def gone(self) -> list[str]:
        """Calendars that were removed during the run."""
        with self.lock:
            return [c.google_id for c in self.calendars.values() if c.removed]


def user_email(index: int) -> str:
    return f"u{index}@sim.example"


def populate(
    control: EmulatorControl,
    google: GoogleClients,
    ledger: Ledger,
    *,
    users: int,
    seed: int,
    clock: Any,
    events_per_calendar: int = 2,
) -> World:
    """Create the users and calendars on Google (see the module docstring)."""
    world = World([SimUser(i, user_email(i)) for i in range(users)])
    control.create_user(EDITOR)
    owners = [u.index for u in world.users if u.index % 2 == 0 or users < 4]
    for user in world.users:
        control.create_user(user.email)
        world.add(SimCalendar(user.email, user.email, user.email, primary=True))
    for index in owners:
        email = user_email(index)
        made = control.add_calendar(email, f"team {index}")
        world.add(SimCalendar(made["id"], email, f"team {index}"))
    teams = [c for c in world.calendars.values() if not c.primary]
    for user in world.users:
        later = [c for c in teams if c.owner != user.email]
        if later:
            # the next owner's team after this user, cyclically
            pick = min(later, key=lambda c: (int(c.owner[1:].split("@")[0]) - user.index) % users)
            control.share(pick.google_id, user.email, "reader")
            world.share(pick.google_id, user.email, reader=True)
    for calendar in world.calendars.values():
        control.share(calendar.google_id, EDITOR, "writer")
    seed_events(google, ledger, world.calendars.values(), seed, events_per_calendar, clock)
    return world


def seed_events(
    google: GoogleClients,
    ledger: Ledger,
    calendars: Iterable[SimCalendar],
    seed: int,
    count: int,
    clock: Any,
) -> None:
    """`count` events by the editor in each calendar, in batches, recorded in the ledger."""
    rng = random.Random(f"{seed}:seed-events")
    service = google.editor
    pending: list[tuple[str, dict[str, Any]]] = [
        (c.google_id, bodies.google_event(rng)) for c in calendars for _ in range(count)
    ]
    for start in range(0, len(pending), 500):
        part = pending[start : start + 500]
        answers: dict[str, Any] = {}
        batch = new_batch(google.emulator, _collector(answers))
        for n, (calendar, body) in enumerate(part):
            batch.add(service.events().insert(calendarId=calendar, body=body), request_id=str(n))
        sent = clock()
        batch.execute()
        acked = clock()
        for n, (calendar, _body) in enumerate(part):
            made = answers[str(n)]
            fields = {k: from_google(made)[k] for k in FIELDS}
            ledger.add(Write("google", EDITOR, calendar, made["id"], "create", fields, sent, acked))


def _collector(answers: dict[str, Any]) -> Callable[[str, Any, Exception | None], None]:
    def collect(request_id: str, response: Any, error: Exception | None) -> None:
        if error is not None:
            raise error
        answers[request_id] = response

    return collect
