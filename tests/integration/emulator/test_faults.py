"""Google's error shape, injected faults, connection resets and lost responses."""

from __future__ import annotations

import http.client
from collections.abc import Callable

import httpx2 as httpx
import pytest

from calsync.emulator.testing import EmulatorControl
from tests.integration.emulator.conftest import Account, Target, timed
from tests.integration.emulator.helpers import google_error

GOOGLE_SHAPED = [
    (400, "badRequest", "global"),
    (401, "authError", "global"),
    (403, "rateLimitExceeded", "usageLimits"),
    (403, "userRateLimitExceeded", "usageLimits"),
    (403, "quotaExceeded", "usageLimits"),
    (403, "forbiddenForNonOrganizer", "calendar"),
    (404, "notFound", "global"),
    (409, "duplicate", "global"),
    (410, "fullSyncRequired", "calendar"),
    (412, "conditionNotMet", "global"),
    (429, "rateLimitExceeded", "usageLimits"),
    (500, "backendError", "global"),
    (503, "backendError", "global"),
]


@pytest.mark.parametrize(("status", "reason", "domain"), GOOGLE_SHAPED)
def test_injected_errors_have_googles_body(
    control: EmulatorControl,
    target: Target,
    account: Account,
    status: int,
    reason: str,
    domain: str,
) -> None:
    control.add_fault(kind="status", status=status, reason=reason, path="/calendarList$")
    response = httpx.get(
        f"{target.base_url}/calendar/v3/users/me/calendarList",
        headers={"Authorization": f"Bearer {account.access_token}"},
    )
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == status
    assert error["message"]
    assert error["status"]
    assert error["errors"] == [
        {"domain": domain, "reason": reason, "message": error["errors"][0]["message"]}
    ]
    # The fault was for one request only
    again = httpx.get(
        f"{target.base_url}/calendar/v3/users/me/calendarList",
        headers={"Authorization": f"Bearer {account.access_token}"},
    )
    assert again.status_code == 200


def test_missing_unknown_and_expired_tokens_are_401(
    control: EmulatorControl, target: Target, account: Account
) -> None:
    url = f"{target.base_url}/calendar/v3/users/me/calendarList"
    missing = httpx.get(url)
    unknown = httpx.get(url, headers={"Authorization": "Bearer ya29.nope"})
    control.advance_clock(3601)
    expired = httpx.get(url, headers={"Authorization": f"Bearer {account.access_token}"})
    for response in (missing, unknown, expired):
        assert response.status_code == 401
        assert response.json()["error"]["errors"][0]["location"] == "Authorization"
        assert "WWW-Authenticate" in response.headers
    assert missing.json()["error"]["errors"][0]["reason"] == "required"
    assert expired.json()["error"]["errors"][0]["reason"] == "authError"


def test_faults_match_method_and_path_and_run_out(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    control.add_fault(kind="status", status=500, method="POST", path=r"/events$", count=2)
    events = account.service.events()
    assert events.list(calendarId=calendar_id).execute()["items"] == []
    for _ in range(2):
        call = events.insert(calendarId=calendar_id, body=timed("2026-11-21", 9))
        assert google_error(call.execute)[:2] == (500, "backendError")
    assert events.insert(calendarId=calendar_id, body=timed("2026-11-21", 9)).execute()["id"]
    assert control.faults()[0]["remaining"] == 0


def test_clearing_faults(control: EmulatorControl, account: Account, calendar_id: str) -> None:
    control.add_fault(kind="status", status=503, count=None)
    call = account.service.events().list(calendarId=calendar_id)
    assert google_error(call.execute)[0] == 503
    control.clear_faults()
    assert call.execute()["items"] == []


def test_user_specific_fault(control: EmulatorControl, new_account: Callable[..., Account]) -> None:
    alice, bob = new_account(), new_account()
    control.add_fault(kind="status", status=403, reason="quotaExceeded", user=alice.email)
    assert bob.service.calendarList().list().execute()["items"]
    assert google_error(alice.service.calendarList().list().execute)[:2] == (403, "quotaExceeded")


def test_connection_reset_reaches_the_client_as_an_error(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    control.add_fault(kind="reset", method="GET", path="/events$")
    call = account.service.events().list(calendarId=calendar_id)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        call.execute()
    assert call.execute()["items"] == []
    logged = control.requests(method="GET", path=f"/calendar/v3/calendars/{calendar_id}/events")
    assert [r["status"] for r in logged] == [None, 200]


def test_insert_applied_but_response_lost_then_retry_sees_409(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    # Given the next insert's answer is replaced by a 503 after the write happened
    control.add_fault(kind="status", status=503, method="POST", path="/events$", after_write=True)
    events = account.service.events()
    body = timed("2026-11-21", 9) | {"id": "lost000001", "summary": "written"}

    # When the client inserts, it sees a failure
    assert google_error(events.insert(calendarId=calendar_id, body=body).execute)[0] == 503

    # Then the event exists, and retrying with the same id is a 409
    assert events.get(calendarId=calendar_id, eventId="lost000001").execute()["summary"] == (
        "written"
    )
    retry = events.insert(calendarId=calendar_id, body=body)
    assert google_error(retry.execute)[:2] == (409, "duplicate")


def test_reset_after_write(control: EmulatorControl, account: Account, calendar_id: str) -> None:
    control.add_fault(kind="reset", method="POST", path="/events$", after_write=True)
    events = account.service.events()
    body = timed("2026-11-21", 9) | {"id": "reset00001"}
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        events.insert(calendarId=calendar_id, body=body).execute()
    assert events.get(calendarId=calendar_id, eventId="reset00001").execute()["id"] == "reset00001"


def test_after_write_fault_waits_for_a_successful_write(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    control.add_fault(kind="status", status=500, method="POST", path="/events$", after_write=True)
    events = account.service.events()
    invalid = events.insert(calendarId=calendar_id, body={"summary": "no times"})
    assert google_error(invalid.execute)[0] == 400
    valid = events.insert(calendarId=calendar_id, body=timed("2026-11-21", 9))
    assert google_error(valid.execute)[0] == 500


def test_latency_fault_delays_the_answer(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    control.add_fault(kind="latency", latency_ms=150, method="GET")
    account.service.events().list(calendarId=calendar_id).execute()
    logged = control.requests(method="GET")
    assert logged[-1]["duration_ms"] >= 150
    assert logged[-1]["faults"]


def test_expired_token_fault_makes_the_client_refresh(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    control.add_fault(kind="expire_token", path="/events$")
    control.clear_requests()
    assert account.service.events().list(calendarId=calendar_id).execute()["items"] == []
    calls = [(r["method"], r["path"], r["status"]) for r in control.requests()]
    events_path = f"/calendar/v3/calendars/{calendar_id}/events"
    assert calls == [("GET", events_path, 401), ("POST", "/token", 200), ("GET", events_path, 200)]


def test_bad_fault_specs_are_rejected(control: EmulatorControl) -> None:
    for spec in ({"kind": "explode"}, {"count": 0}, {"status": 200}, {"path": "("}):
        with pytest.raises(httpx.HTTPStatusError) as caught:
            control.add_fault(**spec)
        assert caught.value.response.status_code == 400


def test_drop_items_thins_a_successful_listing_and_passes_errors_by(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    events = account.service.events()
    for hour in range(8, 13):
        events.insert(calendarId=calendar_id, body=timed("2026-11-21", hour)).execute()
    first = events.list(calendarId=calendar_id).execute()
    control.invalidate_sync_tokens(calendar_id)
    control.add_fault(kind="drop_items", method="GET", path=r"/events$", keep=2, count=1)
    # An error answer (410 for the old sync token) passes and leaves the fault armed
    stale = events.list(calendarId=calendar_id, syncToken=first["nextSyncToken"])
    assert google_error(stale.execute)[:2] == (410, "fullSyncRequired")
    # The next successful listing lists two of the five events, with a sync token
    thinned = events.list(calendarId=calendar_id).execute()
    assert len(thinned["items"]) == 2
    assert thinned["nextSyncToken"]
    assert control.faults()[0]["remaining"] == 0
    # And the events are all still there
    assert len(events.list(calendarId=calendar_id).execute()["items"]) == 5
