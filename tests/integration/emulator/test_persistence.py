"""An emulator with a state file comes back from a restart as it was left: what a client
of Google sees (tokens, events, tombstones, sync positions, channels) does not change.

These tests run their own emulators (the state file is the subject), on any target."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from calsync.emulator.persistence import StateFileError
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl

EMAIL = "keeper@example.com"
CLIENT = {"client_id": "calsync-dev", "client_secret": "calsync-dev-secret"}


def api(base: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base}/calendar/v3/calendars/primary",
        headers={"Authorization": f"Bearer {token}"},
    )


def list_all(client: httpx.Client, **params: str) -> dict[str, Any]:
    answer = client.get("/events", params={"showDeleted": "true", **params})
    assert answer.status_code == 200, answer.text
    assert "nextPageToken" not in answer.json()
    return dict(answer.json())


def test_a_restarted_emulator_keeps_everything_a_client_can_see(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator-state.json"
    # Given a world with timed, all-day, recurring (with a moved and a cancelled instance),
    # deleted events, a wall time that a DST change skips, odd texts, and a push channel
    with EmulatorServer(state_file=state_file) as first, EmulatorControl(first.url) as control:
        granted = control.create_user(EMAIL)
        with api(first.url, granted["access_token"]) as google:
            bodies: list[dict[str, Any]] = [
                {"summary": "timed", "start": {"dateTime": "2026-12-01T09:00:00+01:00"},
                 "end": {"dateTime": "2026-12-01T10:00:00+01:00"}},
                {"summary": "all day", "start": {"date": "2026-12-24"},
                 "end": {"date": "2026-12-25"}},
                {"summary": "skipped hour", "start": {"dateTime": "2027-03-28T02:30:00",
                 "timeZone": "Europe/Berlin"}, "end": {"dateTime": "2027-03-28T04:00:00",
                 "timeZone": "Europe/Berlin"}},
                {"summary": "weekly", "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
                 "start": {"dateTime": "2026-12-02T09:00:00", "timeZone": "Europe/Berlin"},
                 "end": {"dateTime": "2026-12-02T09:30:00", "timeZone": "Europe/Berlin"}},
                {"summary": "doomed", "start": {"date": "2026-12-05"},
                 "end": {"date": "2026-12-06"}},
                # texts Google keeps that UTF-8 cannot encode or a database cannot store
                {"summary": "odd \ud800 \u0000 text", "start": {"date": "2026-12-07"},
                 "end": {"date": "2026-12-08"}},
            ]  # fmt: skip
            ids = {}
            for body in bodies:
                created = google.post(  # as JSON escapes: httpx would send raw UTF-8
                    "/events",
                    content=json.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                assert created.status_code == 200, created.text
                ids[body["summary"]] = created.json()["id"]
            instances = google.get(f"/events/{ids['weekly']}/instances").json()["items"]
            moved = google.patch(
                f"/events/{instances[1]['id']}", json={"summary": "weekly, moved once"}
            )
            assert moved.status_code == 200, moved.text
            assert google.delete(f"/events/{instances[2]['id']}").status_code == 204
            assert google.delete(f"/events/{ids['doomed']}").status_code == 204
            watched = google.post(
                "/events/watch",
                json={"id": "chan-1", "type": "web_hook", "address": "http://127.0.0.1:9/hook"},
            )
            assert watched.status_code == 200, watched.text
            before = list_all(google)
            expanded_before = list_all(google, singleEvents="true", orderBy="startTime")
        channels_before = control.channels()
    assert json.loads(state_file.read_text())["format"] == "calsync-emulator-state"
    assert oct(os.stat(state_file).st_mode & 0o777) == "0o600"  # it holds tokens

    # When a new emulator starts on the same file
    with EmulatorServer(state_file=state_file) as second, EmulatorControl(second.url) as control:
        # Then the old access token works and the listing is the same, resource for resource
        with api(second.url, granted["access_token"]) as google:
            after = list_all(google)
            assert after["items"] == before["items"]
            assert (
                list_all(google, singleEvents="true", orderBy="startTime")["items"]
                == (expanded_before["items"])
            )
            # And the old sync token still means "nothing changed since"
            unchanged = list_all(google, syncToken=before["nextSyncToken"])
            assert unchanged["items"] == []
            # And a new write is the only change after it, with a fresh etag
            added = google.post(
                "/events",
                json={"summary": "after restart", "start": {"date": "2026-12-30"},
                      "end": {"date": "2026-12-31"}},
            )  # fmt: skip
            assert added.status_code == 200, added.text
            changes = list_all(google, syncToken=before["nextSyncToken"])["items"]
            assert [item["summary"] for item in changes] == ["after restart"]
            assert added.json()["etag"] not in {item["etag"] for item in before["items"]}
        # And the refresh token and the channel survived
        refreshed = httpx.post(
            f"{second.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": granted["refresh_token"]}
            | CLIENT,
        )
        assert refreshed.status_code == 200, refreshed.text
        assert [c["id"] for c in control.channels()] == [c["id"] for c in channels_before]


def test_a_reset_is_kept_too(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator-state.json"
    with EmulatorServer(state_file=state_file) as first, EmulatorControl(first.url) as control:
        control.create_user(EMAIL)
        control.reset()
    with EmulatorServer(state_file=state_file) as second, EmulatorControl(second.url) as control:
        assert control.users() == []


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"format": "other"}', b'{"format": "calsync-emulator-state"}']
)
def test_an_unusable_state_file_stops_the_start_naming_it(tmp_path: Path, content: bytes) -> None:
    state_file = tmp_path / "emulator-state.json"
    state_file.write_bytes(content)

    with pytest.raises(StateFileError, match=r"emulator-state\.json"):
        EmulatorServer(state_file=state_file)

    assert state_file.read_bytes() == content  # left for the person to look at
