"""Every list route keeps one contract (docs/api.md, "Lists"; `calsync.web.paging`):
``limit`` outside 1-200 is 422 naming ``limit`` (never silently capped); a cursor that is
not the ``next_cursor`` of the same list, for the same user and filters, is 422 naming
``cursor``; unknown parameters and enumeration values are 422 naming them; a 405 names
every method the path answers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from calsync.domain.accounts import Role
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

LISTS = ["/events", "/sync/logs", "/me/notices", "/admin/users", "/admin/audit"]


def _fields(response: Any) -> list[str]:
    return [d["field"] for d in response.json()["error"]["details"]]


def _two_events(app: EventsApp, user: User) -> None:
    for day in (3, 4):
        app.create(
            user,
            {
                "title": f"day {day}",
                "start_time": f"2031-03-0{day}T09:00:00Z",
                "end_time": f"2031-03-0{day}T10:00:00Z",
            },
        )


def _cursor(app: EventsApp, user: User, path: str, **params: str) -> str:
    answer = app.client.get(path, params={"limit": "1", **params}, headers=user.headers)
    assert answer.status_code == 200, answer.text
    cursor: str = answer.json()["next_cursor"]
    assert cursor
    return cursor


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["201", "0", "-1", "ten", "1.5"])
def test_a_limit_out_of_range_is_422_naming_it_on_every_list(
    any_app: EventsApp, path: str, limit: str
) -> None:
    admin = any_app.local_user("boss@example.com", Role.ADMIN)
    answer = any_app.client.get(path, params={"limit": limit}, headers=admin.headers)
    assert answer.status_code == 422, answer.text
    assert _fields(answer) == ["limit"]


@pytest.mark.parametrize("path", LISTS)
def test_unknown_parameters_are_422_naming_them_on_every_list(
    any_app: EventsApp, path: str
) -> None:
    admin = any_app.local_user("boss@example.com", Role.ADMIN)
    answer = any_app.client.get(path, params={"colour": "red"}, headers=admin.headers)
    assert answer.status_code == 422, answer.text
    assert _fields(answer) == ["colour"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/sync/logs", "kind"),
        ("/me/notices", "status"),
        ("/me/notices", "kind"),
        ("/admin/audit", "action"),
    ],
)
def test_unknown_enumeration_values_are_422_naming_the_field(
    any_app: EventsApp, path: str, field: str
) -> None:
    admin = any_app.local_user("boss@example.com", Role.ADMIN)
    answer = any_app.client.get(path, params={field: "bogus"}, headers=admin.headers)
    assert answer.status_code == 422, answer.text
    assert _fields(answer) == [field]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


#: Junk, and a cursor of the format calsync gave out before cursors were bound to a list.
JUNK = [
    "not-a-cursor",
    _b64('["2031-03-03T09:00:00+00:00","2f1d8e0c-3c5a-4d0e-9f1a-1b2c3d4e5f60"]'),
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("cursor", JUNK, ids=["junk", "stale-format"])
def test_a_cursor_calsync_did_not_make_is_422_on_every_list(
    any_app: EventsApp, path: str, cursor: str
) -> None:
    admin = any_app.local_user("boss@example.com", Role.ADMIN)
    answer = any_app.client.get(path, params={"cursor": cursor}, headers=admin.headers)
    assert answer.status_code == 422, answer.text
    assert _fields(answer) == ["cursor"]


def test_a_cursor_of_another_list_user_or_query_is_422(any_app: EventsApp) -> None:
    # Given cursors of four lists, each with a next page
    alice = any_app.connect("alice@example.com", role=Role.ADMIN)
    bob = any_app.connect("bob@example.com")
    _two_events(any_app, alice)
    _two_events(any_app, bob)
    any_app.pull(alice)
    any_app.pull(alice)
    for role in ("admin", "user"):  # two audit rows
        changed = any_app.client.patch(
            f"/admin/users/{bob.id}", json={"role": role}, headers=alice.headers
        )
        assert changed.status_code == 200
    cursors = {path: _cursor(any_app, alice, path) for path in LISTS if path != "/me/notices"}
    # Then each is refused by every other list
    for made_by, cursor in cursors.items():
        for path in LISTS:
            if path == made_by:
                continue
            answer = any_app.client.get(path, params={"cursor": cursor}, headers=alice.headers)
            assert answer.status_code == 422, (made_by, path, answer.text)
            assert _fields(answer) == ["cursor"]
    # And alice's events cursor is refused for bob, and for other filters
    events_cursor = cursors["/events"]
    for user, params in [
        (bob, {}),
        (alice, {"category": "work"}),
        (alice, {"start_date": "2031-03-01", "end_date": "2031-03-31"}),
    ]:
        answer = any_app.client.get(
            "/events", params={"cursor": events_cursor, **params}, headers=user.headers
        )
        assert answer.status_code == 422, answer.text
        assert _fields(answer) == ["cursor"]
    # While it pages on with the same query, whatever the limit
    answer = any_app.client.get(
        "/events", params={"cursor": events_cursor, "limit": "5"}, headers=alice.headers
    )
    assert [e["title"] for e in answer.json()["events"]] == ["day 4"]


def test_admin_lists_page_through_every_row_once(any_app: EventsApp) -> None:
    admin = any_app.local_user("boss@example.com", Role.ADMIN)
    emails = [*sorted(f"user{n}@example.com" for n in range(5)), "boss@example.com"]
    for email in emails[:-1]:
        user = any_app.local_user(email)
        changed = any_app.client.patch(
            f"/admin/users/{user.id}", json={"status": "disabled"}, headers=admin.headers
        )
        assert changed.status_code == 200
    for path, rows, key, expected in [
        ("/admin/users", "users", "email", len(emails)),
        ("/admin/audit", "events", "id", len(emails) - 1),
    ]:
        seen: list[str] = []
        params: dict[str, str] = {"limit": "2"}
        if path == "/admin/audit":
            params["action"] = "status_changed"
        while True:
            page = any_app.client.get(path, params=params, headers=admin.headers)
            assert page.status_code == 200, page.text
            body = page.json()
            seen += [row[key] for row in body[rows]]
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        assert len(seen) == len(set(seen)) == expected, (path, seen)
    users = any_app.client.get("/admin/users", headers=admin.headers).json()["users"]
    assert [u["email"] for u in users] == sorted(u["email"] for u in users)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/events", {"GET", "HEAD", "POST"}),
        (
            "POST",
            "/events/0f3b5a5e-5c1e-4a8e-9a8e-5c1e4a8e9a8e",
            {"GET", "HEAD", "PUT", "PATCH", "DELETE"},
        ),
        ("DELETE", "/me/preferences", {"GET", "HEAD", "PUT"}),
        ("POST", "/sync/logs", {"GET", "HEAD"}),
    ],
)
def test_a_405_lists_every_method_of_the_path(
    any_app: EventsApp, method: str, path: str, allowed: set[str]
) -> None:
    admin = any_app.local_user("boss@example.com", Role.ADMIN)
    answer = any_app.client.request(method, path, headers=admin.headers)
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) == allowed
    assert json.loads(answer.text)["error"]["code"] == "method_not_allowed"
