"""The /emulator/ control API and the server wrapper."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from googleapiclient.errors import HttpError
from starlette.testclient import TestClient

from calsync.emulator.app import create_emulator_app
from calsync.emulator.server import EmulatorServer
from calsync.emulator.state import EmulatorState
from calsync.emulator.testing import EmulatorControl, build_calendar_service
from tests.integration.emulator.conftest import Account, Target


def test_create_user_returns_working_tokens_and_calendars(
    control: EmulatorControl, target: Target
) -> None:
    created = control.create_user(
        "Carol@Example.com",
        calendars=[{"summary": "Board", "access_role": "reader", "owner": "ceo@example.com"}],
    )
    assert created["email"] == "carol@example.com"
    assert {c["summary"]: c["access_role"] for c in created["calendars"]} == {
        "carol@example.com": "owner",
        "Board": "reader",
    }
    service = build_calendar_service(target.base_url, created["access_token"])
    assert len(service.calendarList().list().execute()["items"]) == 2
    service.close()
    again = control.create_user("carol@example.com")
    assert again["access_token"] != created["access_token"]


def test_request_log_filters_and_clears(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    control.clear_requests()
    account.service.events().list(calendarId=calendar_id).execute()
    account.service.calendarList().list().execute()
    everything = control.requests()
    assert [(r["method"], r["status"], r["user"]) for r in everything] == [
        ("GET", 200, account.email),
        ("GET", 200, account.email),
    ]
    lists = control.requests(path="/calendar/v3/users/me/calendarList")
    assert len(lists) == 1
    assert lists[0]["query"] == "alt=json"
    assert len(control.requests(path_regex="/events$")) == 1
    assert control.requests(method="POST") == []
    control.clear_requests()
    assert control.requests() == []


def test_the_request_log_limit_applies_when_configured(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    # Given a log limited to 3 entries through the control API (default 100,000)
    control.configure(request_log_limit=3)
    control.clear_requests()
    # When 5 requests are made
    for _ in range(5):
        account.service.events().list(calendarId=calendar_id).execute()
    # Then the log keeps the newest 3; raising the limit keeps what is there and grows
    assert len(control.requests()) == 3
    control.configure(request_log_limit=10)
    for _ in range(5):
        account.service.events().list(calendarId=calendar_id).execute()
    assert len(control.requests()) == 8


def test_reset_forgets_users(control: EmulatorControl, target: Target, account: Account) -> None:
    control.reset()
    response = httpx.get(
        f"{target.base_url}/calendar/v3/users/me/calendarList",
        headers={"Authorization": f"Bearer {account.access_token}"},
    )
    assert response.status_code == 401


def test_bad_control_input_is_400(control: EmulatorControl) -> None:
    with pytest.raises(httpx.HTTPStatusError) as unknown_key:
        control.configure(no_such_setting=1)
    assert unknown_key.value.response.status_code == 400
    with pytest.raises(httpx.HTTPStatusError) as no_email:
        control.create_user("not-an-email")
    assert no_email.value.response.status_code == 400
    with pytest.raises(httpx.HTTPStatusError) as no_user:
        control.issue_tokens("nobody@example.com")
    assert no_user.value.response.status_code == 404


def test_clock_only_moves_forward(control: EmulatorControl) -> None:
    moved = control.advance_clock(90)
    assert moved["offset_seconds"] == 90
    with pytest.raises(httpx.HTTPStatusError):
        control.advance_clock(-1)


def test_servers_pick_free_ports_and_stop(emulator: EmulatorServer) -> None:
    with EmulatorServer(port=0) as other:
        assert other.port not in (0, emulator.port)
        assert httpx.get(other.url + "/").status_code == 200
        url = other.url
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/", timeout=2)


def test_app_factory_uses_the_state_it_is_given(emulator: EmulatorServer) -> None:
    state = EmulatorState()
    with TestClient(create_emulator_app(state)) as client:
        created = client.post("/emulator/users", json={"email": "dana@example.com"}).json()
        assert state.accounts.user("dana@example.com") is not None
        listed = client.get(
            "/calendar/v3/users/me/calendarList",
            headers={"Authorization": f"Bearer {created['access_token']}"},
        )
        assert [e["id"] for e in listed.json()["items"]] == ["dana@example.com"]


def userinfo(target: Target, access_token: str) -> httpx.Response:
    return httpx.get(
        f"{target.base_url}/oauth2/v3/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )


def test_each_account_has_a_stable_distinct_sub(control: EmulatorControl, target: Target) -> None:
    # Given three accounts, one of them granted twice
    first = control.create_user("ann@example.com")
    again = control.issue_tokens("ann@example.com")
    others = [control.create_user(f"user{i}@example.com") for i in range(2)]

    subs = {u["email"]: u["sub"] for u in control.users()}

    # Then every account has its own sub, the same through every grant and userinfo
    assert len(set(subs.values())) == 3
    assert userinfo(target, first["access_token"]).json()["sub"] == subs["ann@example.com"]
    assert userinfo(target, again["access_token"]).json()["sub"] == subs["ann@example.com"]
    assert userinfo(target, others[1]["access_token"]).json()["sub"] == subs["user1@example.com"]


def test_a_recreated_account_is_a_stranger_with_the_same_email(
    control: EmulatorControl, target: Target
) -> None:
    # Given an account with an event on its primary calendar and a calendar shared with it
    old = control.create_user("ann@example.com")
    old_sub = userinfo(target, old["access_token"]).json()["sub"]
    service = build_calendar_service(target.base_url, old["access_token"])
    service.events().insert(
        calendarId="primary",
        body={"summary": "old", "start": {"date": "2031-01-01"}, "end": {"date": "2031-01-02"}},
    ).execute()
    service.close()
    shared = control.add_calendar("ann@example.com", "Team", access_role="writer")

    # When the address is given up and another account takes it
    recreated = control.recreate_user("ann@example.com")

    # Then the new account has a new sub, and the old one's tokens are dead
    assert recreated["email"] == "ann@example.com"
    assert recreated["sub"] != old_sub
    assert userinfo(target, old["access_token"]).status_code == 401
    new = control.issue_tokens("ann@example.com")
    assert userinfo(target, new["access_token"]).json()["sub"] == recreated["sub"]
    # And it sees an empty primary calendar and nothing of the old account's shares
    service = build_calendar_service(target.base_url, new["access_token"])
    listed = service.calendarList().list().execute()["items"]
    assert [c["id"] for c in listed] == ["ann@example.com"]
    assert service.events().list(calendarId="primary").execute()["items"] == []
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId=shared["id"]).execute()
    assert caught.value.resp.status == 404
    service.close()


def test_recreating_an_unknown_account_is_404(control: EmulatorControl) -> None:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        control.recreate_user("nobody@example.com")
    assert caught.value.response.status_code == 404
