"""The emulator fault the worker-kill scenario relies on: ``latency`` with
``after_write`` applies the request, then holds its answer back."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from calsync.emulator.testing import build_calendar_service
from tests.conftest import FakeGoogle

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_latency_after_write_holds_the_answer_of_an_applied_write(
    fake_google: FakeGoogle,
) -> None:
    control = fake_google.control
    granted = control.create_user("writer@example.com")
    writer = build_calendar_service(fake_google.url, granted["access_token"])
    reader = build_calendar_service(fake_google.url, granted["access_token"])
    fault = control.add_fault(
        kind="latency", after_write=True, method="POST", path="/events$", latency_ms=1500
    )
    answered: list[Any] = []
    body = {
        "id": "heldans0001",
        "summary": "held",
        "start": {"dateTime": "2031-03-04T10:00:00Z"},
        "end": {"dateTime": "2031-03-04T11:00:00Z"},
    }
    inserting = threading.Thread(
        target=lambda: answered.append(
            writer.events().insert(calendarId="writer@example.com", body=body).execute()
        )
    )
    inserting.start()
    try:
        # While the insert's answer is held back, the event is already on Google
        deadline = time.monotonic() + 5
        while True:
            listed = reader.events().list(calendarId="writer@example.com").execute()["items"]
            if listed:
                break
            assert time.monotonic() < deadline, "the held insert was not applied"
            time.sleep(0.05)
        assert [e["id"] for e in listed] == ["heldans0001"]
        assert not answered, "the answer came before the latency ran out"
    finally:
        inserting.join(10)
        writer.close()
        reader.close()
    # Then the answer arrives, and the fault is spent
    assert answered[0]["id"] == "heldans0001"
    (spent,) = [f for f in control.faults() if f["id"] == fault["id"]]
    assert spent["hits"] == 1
    assert spent["remaining"] == 0
    logged = control.requests(
        method="POST", path="/calendar/v3/calendars/writer@example.com/events"
    )
    assert [r["status"] for r in logged] == [200]
    assert logged[0]["duration_ms"] >= 1500


def test_a_request_held_across_a_reset_is_not_logged_after_it(fake_google: FakeGoogle) -> None:
    control = fake_google.control
    granted = control.create_user("writer@example.com")
    reader = build_calendar_service(fake_google.url, granted["access_token"])
    control.add_fault(kind="latency", method="GET", path="/events$", latency_ms=1000)
    answers: list[Any] = []

    def list_events() -> None:  # after the reset its user is gone: any answer will do
        try:
            answers.append(reader.events().list(calendarId="writer@example.com").execute())
        except Exception as err:
            answers.append(err)

    listing = threading.Thread(target=list_events)
    listing.start()
    deadline = time.monotonic() + 5
    while not any(f["hits"] for f in control.faults()):
        assert time.monotonic() < deadline, "the listing did not reach the emulator"
        time.sleep(0.02)
    # When the emulator is reset while the request is held (the next test begins)
    control.reset()
    listing.join(10)
    reader.close()
    # Then the old request does not show up in the new log
    assert len(answers) == 1
    assert control.requests() == []
