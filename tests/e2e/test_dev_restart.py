"""A restart of ``calsync dev`` changes nothing: Google (the emulator) is kept in the
state folder beside the database, so the first pulls after a restart, whether the last
run ended with SIGTERM or with ``kill -9``, find every event where it was."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.dev_process import DevProcess, bearer, eventually, free_port, sign_in

pytestmark = pytest.mark.e2e

ANN = "ann@example.com"


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def runs(tmp_path: Path, ports: tuple[int, int]) -> Iterator[list[DevProcess]]:
    started: list[DevProcess] = []
    yield started
    for run in started:
        run.close()


def start(folder: Path, ports: tuple[int, int], runs: list[DevProcess]) -> DevProcess:
    run = DevProcess(folder, port=ports[0], emulator_port=ports[1])
    runs.append(run)
    return run.start()


def create(base: str, token: str, title: str) -> str:
    created = httpx.post(
        f"{base}/events",
        headers=bearer(token),
        json={
            "title": title,
            "start_time": "2026-12-01T09:00:00+01:00",
            "end_time": "2026-12-01T10:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def local_titles(base: str, token: str) -> dict[str, str]:
    """The caller's events in December 2026: id -> title (one page suffices here)."""
    answer = httpx.get(
        f"{base}/events",
        headers=bearer(token),
        params={"start_date": "2026-12-01", "end_date": "2026-12-31", "limit": 100},
    )
    assert answer.status_code == 200, answer.text
    return {event["id"]: event["title"] for event in answer.json()["events"]}


def all_synced(base: str, token: str, ids: list[str]) -> bool:
    states = [
        httpx.get(f"{base}/events/{i}", headers=bearer(token)).json()["sync_state"] for i in ids
    ]
    assert not {"error", "conflict"} & set(states), states
    return all(state == "synced" for state in states)


def last_syncs(base: str, token: str) -> dict[str, str | None]:
    """Each of the caller's calendars: when its last pull finished."""
    answer = httpx.get(f"{base}/calendars", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return {c["id"]: c["sync"]["last_synced_at"] for c in answer.json()["calendars"]}


def pull_now(base: str, token: str) -> None:
    """Ask for a pull of the caller's calendars and wait until each has finished one."""
    before = last_syncs(base, token)
    assert before, "the caller has no calendars"
    eventually(
        lambda: httpx.post(f"{base}/sync", headers=bearer(token)).status_code == 202,
        "POST /sync accepted",
    )

    def pulled() -> bool:
        after = last_syncs(base, token)
        return all(after[c] is not None and after[c] != before[c] for c in before)

    eventually(pulled, "a pull of every calendar after the restart")


def google_titles(emulator: str, email: str) -> set[str]:
    """The live events of ``email``'s primary calendar, read from the emulator as another
    Google client would."""
    granted = httpx.post(f"{emulator}/emulator/users/{email}/tokens", json={})
    assert granted.status_code == 201, granted.text
    listing = httpx.get(
        f"{emulator}/calendar/v3/calendars/primary/events",
        headers=bearer(granted.json()["access_token"]),
    )
    assert listing.status_code == 200, listing.text
    items: list[dict[str, Any]] = listing.json()["items"]
    return {item["summary"] for item in items if item.get("status") != "cancelled"}


@pytest.mark.parametrize("ending", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_a_restart_keeps_every_event_locally_and_on_google(
    tmp_path: Path, ports: tuple[int, int], runs: list[DevProcess], ending: signal.Signals
) -> None:
    # Given two signed-in users, each with events that reached Google
    first = start(tmp_path, ports, runs)
    admin = first.admin_token()
    eventually(
        lambda: httpx.get(f"{first.base}/calendars", headers=bearer(admin)).json()["calendars"],
        "the dev admin's calendars connected",
    )
    signed_in = sign_in(first.base, ANN)
    assert signed_in.status_code == 200, signed_in.text
    ann = signed_in.json()["token"]
    eventually(
        lambda: httpx.get(f"{first.base}/calendars", headers=bearer(ann)).json()["calendars"],
        "ann's calendars connected",
    )
    admin_ids = [create(first.base, admin, f"admin {n}") for n in range(3)]
    ann_ids = [create(first.base, ann, f"ann {n}") for n in range(2)]
    eventually(lambda: all_synced(first.base, admin, admin_ids), "admin's events synced")
    eventually(lambda: all_synced(first.base, ann, ann_ids), "ann's events synced")
    admin_before = local_titles(first.base, admin)
    ann_before = local_titles(first.base, ann)
    assert sorted(admin_before.values()) == ["admin 0", "admin 1", "admin 2"]
    assert sorted(ann_before.values()) == ["ann 0", "ann 1"]

    # When calsync dev ends (cleanly or killed) and starts again in the same folder
    status = first.stop(ending)
    assert status == (0 if ending is signal.SIGTERM else -signal.SIGKILL)
    second = start(tmp_path, ports, runs)

    # Then, once each user's calendars were pulled again, nothing is gone
    pull_now(second.base, admin)
    pull_now(second.base, ann)
    assert local_titles(second.base, admin) == admin_before
    assert local_titles(second.base, ann) == ann_before
    assert all_synced(second.base, admin, admin_ids)
    assert google_titles(second.emulator, "admin@calsync.local") == set(admin_before.values())
    assert google_titles(second.emulator, ANN) == set(ann_before.values())
    # And the restarted stack still writes to Google
    later = create(second.base, ann, "ann after restart")
    eventually(lambda: all_synced(second.base, ann, [later]), "a new event synced")
    assert "ann after restart" in google_titles(second.emulator, ANN)
