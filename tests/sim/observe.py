"""The cross-user check: no answer of calsync's ever shows a user another user's object.

`Sightings` is the API clients' observer: from every answer it keeps, per user, the ids
of the objects shown (events and instances, calendars, sync-log rows) and which
calendars they point at, plus the Google calendar id of each calendar listed. `leaks`
then finds:

- an id shown to two users (local ids are per user: a calendar shared by two users is
  two local calendars, each with its own events);
- an event or log row of a calendar that another user listed as theirs;
- a calendar whose Google id the user never had in their Google calendar list;
- a sync-log row of another user id;
- and, recorded as they happen (`probe`), another user's ids answered with anything
  but 404.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sightings:
    """Collects what each user was shown (thread-safe); see the module docstring."""

    objects: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    pointers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    calendars: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    log_owners: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    probe_leaks: list[str] = field(default_factory=list)
    answers: int = 0
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, user: str, method: str, path: str, status: int, body: Any) -> None:
        with self._lock:
            self.answers += 1
            self.statuses[status] += 1
            if 200 <= status < 300 and isinstance(body, dict):
                self._take(user, body)

    def _take(self, user: str, body: dict[str, Any]) -> None:
        for item in body.get("events", [body] if "sync_state" in body else []):
            self.objects[user].add(("event", item["id"]))
            if item.get("series_id"):
                self.objects[user].add(("event", item["series_id"]))
            self.pointers[user].add(item["calendar_id"])
        for item in body.get("calendars", [body] if "google_calendar_id" in body else []):
            self.objects[user].add(("calendar", item["id"]))
            self.calendars[user][item["id"]] = item["google_calendar_id"]
        for item in body.get("logs", []):
            self.objects[user].add(("log", item["id"]))
            self.log_owners[user].add(item["user_id"])
            if item.get("calendar_id"):
                self.pointers[user].add(item["calendar_id"])
            if item.get("event_id"):
                self.objects[user].add(("event", item["event_id"]))

    def probe(self, user: str, what: str, status: int) -> None:
        """`user` asked for another user's object `what` and got `status`."""
        if status != 404:
            with self._lock:
                self.probe_leaks.append(f"{user} got {status} for {what}")

    def known_ids(self, user: str, kind: str) -> list[str]:
        with self._lock:
            return sorted(i for k, i in self.objects[user] if k == kind)

    def leaks(self, user_ids: dict[str, str], ever_visible: dict[str, set[str]]) -> list[str]:
        """Every cross-user sighting (module docstring). `user_ids` maps emails to
        calsync user ids; `ever_visible` to the Google calendars each ever had."""
        found = list(self.probe_leaks)
        with self._lock:
            owner: dict[tuple[str, str], str] = {}
            for user in sorted(self.objects):
                for thing in sorted(self.objects[user]):
                    first = owner.setdefault(thing, user)
                    if first != user:
                        found.append(f"{thing[0]} {thing[1]} shown to {first} and {user}")
            calendar_owner = {c: u for u, listed in self.calendars.items() for c in listed}
            for user, pointed in sorted(self.pointers.items()):
                for calendar in sorted(pointed):
                    holder = calendar_owner.get(calendar)
                    if holder is not None and holder != user:
                        found.append(f"{user} shown an object of {holder}'s calendar {calendar}")
            for user, listed in sorted(self.calendars.items()):
                for local, google in sorted(listed.items()):
                    if google not in ever_visible.get(user, set()):
                        found.append(f"{user} listed calendar {local} = {google}, never theirs")
            for user, owners in sorted(self.log_owners.items()):
                for other in sorted(owners - {user_ids.get(user, "")}):
                    found.append(f"{user} shown sync-log rows of user {other}")
        return found
