"""/batch/calendar/v3 as googleapiclient's BatchHttpRequest sends and parses it."""

from __future__ import annotations

from typing import Any

import pytest

from calsync.emulator.testing import EmulatorControl, new_batch
from tests.integration.emulator.conftest import Account, Target, timed


def test_batch_answers_each_part_in_order_with_its_own_status(
    target: Target, account: Account, calendar_id: str
) -> None:
    events = account.service.events()
    events.insert(
        calendarId=calendar_id, body=timed("2026-11-21", 8) | {"id": "there00001"}
    ).execute()
    results: dict[str, tuple[Any, Exception | None]] = {}
    batch = new_batch(target.base_url, lambda rid, resp, exc: results.__setitem__(rid, (resp, exc)))
    batch.add(events.get(calendarId=calendar_id, eventId="there00001"), request_id="get")
    batch.add(events.get(calendarId=calendar_id, eventId="missing001"), request_id="missing")
    body = timed("2026-11-22", 8) | {"id": "batched001", "summary": "Grüße ✓"}
    batch.add(events.insert(calendarId=calendar_id, body=body), request_id="insert")
    batch.add(events.insert(calendarId=calendar_id, body=body), request_id="again")
    batch.add(events.delete(calendarId=calendar_id, eventId="there00001"), request_id="delete")
    batch.execute()

    assert results["get"][0]["id"] == "there00001"
    assert results["missing"][1] is not None
    assert results["missing"][1].resp.status == 404  # type: ignore[union-attr]
    assert results["insert"][0]["summary"] == "Grüße ✓"
    assert results["again"][1].resp.status == 409  # type: ignore[union-attr]
    assert results["delete"] == ("", None)
    stored = events.get(calendarId=calendar_id, eventId="batched001").execute()
    assert stored["summary"] == "Grüße ✓"


def test_batch_parts_are_logged_as_separate_calls(
    control: EmulatorControl, target: Target, account: Account, calendar_id: str
) -> None:
    control.clear_requests()
    batch = new_batch(target.base_url)
    for hour in range(3):
        body = timed("2026-11-21", 8 + hour)
        batch.add(account.service.events().insert(calendarId=calendar_id, body=body))
    batch.execute()
    parts = control.requests(batch="true")
    assert [(r["method"], r["status"]) for r in parts] == [("POST", 200)] * 3
    assert all(r["user"] == account.email for r in parts)
    outer = control.requests(path="/batch/calendar/v3")
    assert len(outer) == 1


def test_a_fault_hits_one_part_only(
    control: EmulatorControl, target: Target, account: Account, calendar_id: str
) -> None:
    control.add_fault(kind="status", status=503, method="GET", count=1)
    results: list[Exception | None] = []
    batch = new_batch(target.base_url, lambda _rid, _resp, exc: results.append(exc))
    for _ in range(2):
        batch.add(account.service.events().list(calendarId=calendar_id))
    batch.execute()
    assert [getattr(exc, "status_code", None) for exc in results] == [503, None]


def test_reset_in_a_part_resets_the_whole_batch(
    control: EmulatorControl, target: Target, account: Account, calendar_id: str
) -> None:
    control.add_fault(kind="reset", method="GET", path="/events$", count=2)
    batch = new_batch(target.base_url)
    batch.add(account.service.events().list(calendarId=calendar_id))
    with pytest.raises(ConnectionError):
        batch.execute()
