"""The faults mixed into a run, and when each happens.

`schedule` draws, from the seed, the moment (a fraction of all operations done) at which
each fault of the run happens. Faults of every mode:

- ``google_5xx``: the next 4-12 Calendar API requests of one to three users fail with
  500 or 503 (calsync's requests only: the other clients act as the editor);
- ``google_429``: the same with 429 and ``Retry-After: 1``;
- ``drop_pushes``: the emulator loses its next 30 notifications;
- ``duplicate_pushes``: every live channel's last notification is delivered again,
  twice, and a few with older message numbers;
- ``revoke`` ... ``restore``: one user withdraws calsync's access on Google (every
  grant revoked); later they sign in again through ``/auth/google``;
- and the system's own (`System.faults`): kill -9 of a worker or of the dev process,
  a Redis restart, a key rotation.

`Faults.heal` ends what is still on: removes the emulator's remaining faults, signs the
revoked user back in and lets the system heal.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx

from calsync.emulator.testing import EmulatorControl
from tests.sim.clients import GoogleClients, sign_in
from tests.sim.systems import System
from tests.sim.world import World

EVENTS = r"^/calendar/v3/calendars/[^/]+/events"
COMMON = ("google_5xx", "google_429", "drop_pushes", "duplicate_pushes", "revoke")


@dataclass(frozen=True, order=True)
class Planned:
    at: float  # fraction of the run's operations done
    name: str


def schedule(seed: int, system_faults: list[str]) -> list[Planned]:
    """Every fault once at a random moment in the middle 70 % of the run; ``restore``
    some time after ``revoke``."""
    rng = random.Random(f"{seed}:faults")
    plan = [Planned(round(rng.uniform(0.1, 0.8), 3), name) for name in [*COMMON, *system_faults]]
    revoke = next(p for p in plan if p.name == "revoke")
    plan.append(Planned(round(min(0.95, revoke.at + rng.uniform(0.1, 0.3)), 3), "restore"))
    return sorted(plan)


@dataclass
class Faults:
    """Applies planned faults (see the module docstring)."""

    system: System
    world: World
    control: EmulatorControl
    google: GoogleClients
    seed: int
    log: list[str] = field(default_factory=list)

    def apply(self, planned: Planned) -> None:
        rng = random.Random(f"{self.seed}:fault:{planned.name}")
        action = getattr(self, planned.name, None)
        note = action(rng) if action is not None else self.system.faults()[planned.name]()
        self.log.append(f"{planned.at:.2f} {planned.name}: {note}")

    def _users(self, rng: random.Random, most: int) -> list[str]:
        return [u.email for u in rng.sample(self.world.users, min(most, len(self.world.users)))]

    def google_5xx(self, rng: random.Random) -> str:
        users = self._users(rng, 3)
        for email in users:
            self.control.add_fault(
                kind="status",
                status=rng.choice([500, 503]),
                count=rng.randrange(4, 13),
                path=EVENTS,
                user=email,
            )
        return f"5xx bursts for {', '.join(users)}"

    def google_429(self, rng: random.Random) -> str:
        users = self._users(rng, 3)
        for email in users:
            self.control.add_fault(
                kind="status",
                status=429,
                count=rng.randrange(4, 13),
                path=EVENTS,
                user=email,
                headers={"Retry-After": "1"},
            )
        return f"429 bursts for {', '.join(users)}"

    def drop_pushes(self, rng: random.Random) -> str:
        self.control.add_fault(kind="drop_push", count=30)
        return "the next 30 notifications dropped"

    def duplicate_pushes(self, rng: random.Random) -> str:
        channels = [c for c in self.control.channels() if not c["stopped"] and not c["expired"]]
        deliveries: list[tuple[dict[str, Any], int]] = []
        for channel in channels:
            last = int(channel["lastMessageNumber"] or 1)
            numbers = [last, last] + ([max(1, last - 1)] if rng.random() < 0.3 else [])
            deliveries += [(channel, number) for number in numbers]

        def deliver(client: httpx.Client, channel: dict[str, Any], number: int) -> bool:
            headers = {
                "X-Goog-Channel-ID": channel["id"],
                "X-Goog-Resource-ID": channel["resourceId"],
                "X-Goog-Resource-State": "exists",
                "X-Goog-Resource-URI": channel.get("resourceUri", ""),
                "X-Goog-Message-Number": str(number),
            } | ({"X-Goog-Channel-Token": channel["token"]} if channel.get("token") else {})
            try:
                client.post(channel["address"], headers=headers)
            except httpx.TransportError:
                return False  # the receiver is restarting: a lost duplicate
            return True

        # Concurrently, as Google delivers: one by one, 4,000 repeats at 500 users took
        # minutes, and the operations ran out before the next faults came.
        with httpx.Client(timeout=30.0) as client, ThreadPoolExecutor(8) as pool:
            sent = sum(pool.map(lambda d: deliver(client, *d), deliveries))
        return f"{sent} notifications repeated on {len(channels)} channels"

    def revoke(self, rng: random.Random) -> str:
        user = rng.choice(self.world.users)
        user.revoked = True
        revoked = self.control.revoke_user(user.email)
        return f"{user.email} revoked calsync's access ({revoked} grants)"

    def restore(self, rng: random.Random) -> str:
        notes = []
        for user in self.world.users:
            if user.revoked:
                answer = sign_in(self.system.url, user.email)
                user.client.sign_in_again(answer["token"])
                self.google.renew(user.email)
                user.revoked = False
                notes.append(f"{user.email} signed in again")
        return "; ".join(notes) or "nobody to restore"

    def heal(self) -> list[str]:
        self.control.clear_faults()
        notes = ["emulator faults cleared"]
        restored = self.restore(random.Random(0))
        if restored != "nobody to restore":
            notes.append(restored)
        return notes + self.system.heal()


def describe(plan: list[Planned]) -> str:
    return ", ".join(f"{p.name}@{p.at:.2f}" for p in plan)


def channel_json(channel: dict[str, Any]) -> str:
    return f"{channel['id']} ({channel.get('watching')})"
