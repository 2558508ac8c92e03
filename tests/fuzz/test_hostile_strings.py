"""Hostile texts in every string field of the write bodies, every query parameter and
every path id, and hostile cursors on every list: never a 5xx, and a 4xx changes nothing.

On both databases, through the ASGI app (Starlette's TestClient). Hypothesis draws the
texts from the pieces that broke calsync or could (NUL, lone surrogates sent as JSON
escapes or as raw ``surrogatepass`` bytes, noncharacters, bidi controls, 70,000
characters, dates at the ends of the calendar, cursors of nested JSON) mixed with any
code point. `TARGETS` names each field; `test_every_string_field_is_a_target` checks
that it covers every string the OpenAPI document describes, so a new field cannot be
left out. ``CALSYNC_FUZZ_EXAMPLES`` sets the examples per target (default 12,
derandomised, as tests/fuzz/test_schemathesis.py does).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from calsync.config import Settings
from calsync.domain.accounts import Role
from calsync.web import openapi
from tests.conftest import FakeGoogle
from tests.fuzz.apps import GOOD, refused, snapshot
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXAMPLES = int(os.environ.get("CALSYNC_FUZZ_EXAMPLES", "12"))
DERANDOMIZE = "CALSYNC_FUZZ_EXAMPLES" not in os.environ

#: Pieces of text mixed into the drawn ones: each broke calsync once, or could.
PIECES: Final = [
    "\x00",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
    "\uffff",
    "\ufffe",
    "\ufffd",
    "\u202e",
    "\u2066",
    "\u2069",
    "\u200f",
    "\U0001f600",
    "\u0301",
    "\u05e9",
    "\u0645",
    "\r\n",
    "\x1b[31m",
    "\x7f",
    "%00",
    "'",
    '"',
    "\\",
    "../",
    "@",
    ",",
    ";",
    "=",
    ":",
    "_",
]
#: Whole values: long ones, dates at the calendar's ends, numbers, words of the API.
WHOLE: Final = [
    "",
    " ",
    "<70,000 x>",
    "<5,000 NUL>",
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999+00:00",
    "-1",
    "0",
    "9" * 60,
    "1e999",
    "NaN",
    "true",
    "null",
    "all",
    "this",
    "following",
    "admin",
    str(uuid.UUID(int=0)),
    "https://127.0.0.1/",
    "https://push.example.com/\x00",
]
#: The long values, drawn by name (Hypothesis would print them whole with a failure).
LONG: Final = {"<70,000 x>": "x" * 70_000, "<5,000 NUL>": "\x00" * 5_000}
TEXT: Final = st.one_of(
    st.sampled_from(WHOLE),
    st.lists(
        st.one_of(
            st.text(st.characters(exclude_categories=()), max_size=8), st.sampled_from(PIECES)
        ),
        max_size=6,
    ).map("".join),
)


def cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MOMENTS: Final = [
    "9999-12-31T23:59:59.999999+00:00",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2031-03-04T10:00:00+00:00",
    "2031-03-04T10:00:00",
]
#: Cursors: nested JSON, positions at the calendar's ends or in other zones, keys of any
#: text, other JSON, and plain text.
CURSORS: Final = st.one_of(
    st.sampled_from(
        [
            cursor_of(b"[" * 5_000 + b"]" * 5_000),
            cursor_of(b'{"a":' * 3_000 + b"1" + b"}" * 3_000),
            cursor_of(b"[" * 300 + b"]" * 300),
            cursor_of(b'["' + b"\\ud800" + b'", "k"]'),
        ]
    ),
    st.builds(
        lambda at, key: cursor_of(json.dumps([at, key]).encode()),
        st.one_of(st.sampled_from(MOMENTS), TEXT),
        st.one_of(st.uuids().map(str), st.uuids().map(lambda u: f"{u}_20310304"), TEXT),
    ),
    st.builds(lambda value: cursor_of(json.dumps(value).encode()), st.lists(TEXT, max_size=3)),
    TEXT,
)


@dataclass(frozen=True)
class Target:
    """One place a client puts a text: a body field (`build` makes the body around the
    text), a query parameter or a path id. `field` is the name the coverage check uses:
    ``title``, ``attendees[].email``, ``metadata{key}``, ``?cursor``, ``/event_id``."""

    method: str
    path: str
    field: str
    build: Callable[[str], dict[str, Any]] | None = None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} {self.field}"

    @property
    def values(self) -> st.SearchStrategy[str]:
        return CURSORS if self.field == "?cursor" else TEXT


def at(base: dict[str, Any], *keys: str) -> Callable[[str], dict[str, Any]]:
    """The body `base` with the text at `keys` (a path of object keys)."""

    def build(text: str) -> dict[str, Any]:
        body = copy.deepcopy(base)
        place = body
        for key in keys[:-1]:
            place = place.setdefault(key, {})
        place[keys[-1]] = text
        return body

    return build


def event_targets(method: str, path: str, base: dict[str, Any]) -> list[Target]:
    texts = ["title", "description", "location", "category", "timezone", "calendar_id"]
    return [
        *(Target(method, path, name, at(base, name)) for name in texts),
        *(Target(method, path, name, at(base, name)) for name in ("start_time", "end_time")),
        Target(method, path, "recurrence[]", lambda t: base | {"recurrence": [t]}),
        Target(method, path, "attendees[]", lambda t: base | {"attendees": [t]}),
        Target(method, path, "attendees[].email", lambda t: base | {"attendees": [{"email": t}]}),
        Target(
            method,
            path,
            "attendees[].display_name",
            lambda t: base | {"attendees": [{"email": "a@example.com", "display_name": t}]},
        ),
        Target(method, path, "metadata{key}", lambda t: base | {"metadata": {t: "v"}}),
        Target(method, path, "metadata{}", lambda t: base | {"metadata": {"k": t}}),
        *(Target(method, path, name, at(base, name)) for name in PROPERTY_TEXTS),
        *(Target(method, path, dotted, nested(base, dotted)) for dotted in TYPE_TEXTS),
    ]


#: Issue 17's event fields that take a string (decisions K1-K4, P1-P5).
PROPERTY_TEXTS: Final = ("color_id", "event_type", "transparency", "visibility")
TYPE_TEXTS: Final = (
    "focus_time.auto_decline_mode",
    "focus_time.chat_status",
    "focus_time.decline_message",
    "out_of_office.auto_decline_mode",
    "out_of_office.decline_message",
    "working_location.type",
    "working_location.custom_location.label",
    "working_location.office_location.building_id",
    "working_location.office_location.desk_id",
    "working_location.office_location.floor_id",
    "working_location.office_location.floor_section_id",
    "working_location.office_location.label",
)


def nested(base: dict[str, Any], dotted: str) -> Callable[[str], dict[str, Any]]:
    """`base` with the text at the nested field `dotted` (``a.b``: ``{"a": {"b": t}}``)."""

    def body(text: str) -> dict[str, Any]:
        value: Any = text
        for key in reversed(dotted.split(".")):
            value = {key: value}
        return base | value

    return body


KEY_P256: Final = (
    "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)
SUBSCRIPTION: Final = {
    "endpoint": "https://push.example.com/send/1",
    "keys": {"p256dh": KEY_P256, "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
}
LISTING: Final = {"start_date": "2031-03-01", "end_date": "2031-03-31"}

TARGETS: Final = [
    *event_targets("POST", "/events", GOOD),
    *event_targets("PUT", "/events/{event_id}", {}),
    Target("PUT", "/me/preferences", "webhook_url", at({}, "webhook_url")),
    Target("PUT", "/me/preferences", "channels[]", lambda t: {"channels": [t]}),
    Target(
        "PUT",
        "/me/preferences",
        "quiet_hours.start",
        at({"quiet_hours": {"end": "07:00"}}, "quiet_hours", "start"),
    ),
    Target(
        "PUT",
        "/me/preferences",
        "quiet_hours.end",
        at({"quiet_hours": {"start": "22:00"}}, "quiet_hours", "end"),
    ),
    Target(
        "PUT",
        "/me/preferences",
        "quiet_hours.timezone",
        at({"quiet_hours": {"start": "22:00", "end": "07:00"}}, "quiet_hours", "timezone"),
    ),
    Target("POST", "/me/push-subscriptions", "endpoint", at(SUBSCRIPTION, "endpoint")),
    Target("POST", "/me/push-subscriptions", "keys.p256dh", at(SUBSCRIPTION, "keys", "p256dh")),
    Target("POST", "/me/push-subscriptions", "keys.auth", at(SUBSCRIPTION, "keys", "auth")),
    Target("PATCH", "/calendars/{calendar_id}", "conflict_policy", at({}, "conflict_policy")),
    Target("PATCH", "/admin/users/{user_id}", "role", at({}, "role")),
    Target("PATCH", "/admin/users/{user_id}", "status", at({}, "status")),
    *(
        Target("GET", "/events", f"?{name}")
        for name in (
            "start_date",
            "end_date",
            "category",
            "calendar_id",
            "recurring",
            "expand",
            "limit",
            "cursor",
        )
    ),
    *(
        Target("GET", "/sync/logs", f"?{name}")
        for name in ("user_id", "calendar_id", "kind", "limit", "cursor")
    ),
    *(Target("GET", "/me/notices", f"?{name}") for name in ("limit", "cursor", "status", "kind")),
    *(Target("GET", "/admin/users", f"?{name}") for name in ("limit", "cursor")),
    *(Target("GET", "/admin/audit", f"?{name}") for name in ("limit", "cursor", "action")),
    Target("POST", "/sync", "?calendar_id"),
    Target("PUT", "/events/{event_id}", "?scope"),
    Target("DELETE", "/events/{event_id}", "?scope"),
    Target("GET", "/auth/google", "?login_hint"),
    *(Target("GET", "/auth/google/callback", f"?{name}") for name in ("code", "state", "error")),
    Target("GET", "/events/{event_id}", "/event_id"),
    Target("PUT", "/events/{event_id}", "/event_id"),
    Target("DELETE", "/events/{event_id}", "/event_id"),
    Target("PATCH", "/calendars/{calendar_id}", "/calendar_id"),
    Target("PATCH", "/admin/users/{user_id}", "/user_id"),
    Target("POST", "/admin/users/{user_id}/release-email", "/user_id"),
    Target("DELETE", "/me/push-subscriptions/{subscription_id}", "/subscription_id"),
]


@dataclass
class Scene:
    """The app, Alice (who owns the event and calendar the paths name) and an admin."""

    app: EventsApp
    alice: User
    admin: User
    ids: dict[str, str]


@pytest.fixture(params=["embedded", "production"])
def scene(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[Scene]:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    # every request of an example is counted by the limiter, and the clock stands still
    for app in running(settings, fake_google, api_rate_limit_per_minute=10**9):
        alice = app.connect("alice@example.com")
        admin = app.local_user("root@example.com", Role.ADMIN)
        event = app.create(alice, GOOD)
        ids = {
            "event_id": event["id"],
            "calendar_id": str(alice.calendar_id),
            "user_id": str(alice.id),
            "subscription_id": str(uuid.uuid4()),
        }
        yield Scene(app, alice, admin, ids)


def url_of(scene: Scene, target: Target, text: str) -> str:
    """The target's path with its ids (or `text` for the one it attacks) and query,
    percent-encoded from UTF-8 (lone surrogates as their ``surrogatepass`` bytes)."""

    def encoded(value: str) -> str:
        return quote(value.encode("utf-8", "surrogatepass"), safe="")

    path = target.path
    for name, value in scene.ids.items():
        chosen = text if target.field == f"/{name}" else value
        path = path.replace("{" + name + "}", encoded(chosen))
    query = dict(LISTING) if target.path == "/events" and target.method == "GET" else {}
    if target.field.startswith("?"):
        query[target.field[1:]] = text
    if target.path == "/events/{event_id}" and target.method != "GET":
        query.setdefault("scope", "this")
    if not query:
        return path
    return path + "?" + "&".join(f"{encoded(k)}={encoded(v)}" for k, v in query.items())


def send(scene: Scene, target: Target, text: str, raw: bool) -> httpx.Response:
    """One request of `target` with `text`; a body goes as JSON with ``\\u`` escapes, or
    (`raw`) as UTF-8 with lone surrogates as their ``surrogatepass`` bytes."""
    user = scene.admin if target.path.startswith("/admin") else scene.alice
    headers = dict(user.headers)
    content = None
    if target.method in ("POST", "PUT", "PATCH"):
        document = target.build(text) if target.build is not None else {}
        if target.field.startswith(("?", "/")) and target.method == "PUT":
            document = {"location": "room"}
        if raw:
            content = json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
        else:
            content = json.dumps(document).encode()
        headers["Content-Type"] = "application/json"
    return scene.app.client.request(
        target.method,
        url_of(scene, target, text),
        content=content,
        headers=headers,
        follow_redirects=False,
    )


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
def test_no_text_anywhere_is_a_5xx_and_a_4xx_changes_nothing(scene: Scene, target: Target) -> None:
    @given(text=target.values, raw=st.booleans())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=DERANDOMIZE,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def answers(text: str, raw: bool) -> None:
        text = LONG.get(text, text)
        if target.field.startswith(("?", "/")):
            text = text[:20_000]  # a URL of 64 KiB is refused before any app sees it
        before = snapshot(scene.app)
        response = send(scene, target, text, raw)
        assert response.status_code < 500, (text[:200], response.text[:500])
        document: Any = None
        if response.headers.get("content-type", "").startswith("application/json"):
            document = json.loads(response.content.decode("utf-8", errors="strict"))
        if response.status_code < 400 and target.method != "GET":
            return  # a write that was accepted changes things, as it should
        if target.path == "/auth/google/callback":
            before["audit_events"] = snapshot(scene.app)["audit_events"]  # a refusal is audited
        if response.status_code >= 400:
            assert document["error"]["code"], document
        assert snapshot(scene.app) == before, text[:200]

    answers()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "\ud800"),
        ("title", "a\udc00b"),
        ("description", "\udfff"),
        ("location", "\udbff"),
        ("category", "\ud800"),
        ("timezone", "Europe/\ud800"),
        ("recurrence", ["RRULE:FREQ=DAILY\ud800"]),
        ("attendees", ["a\ud800@example.com"]),
        ("attendees", [{"email": "a@example.com", "display_name": "\udfff"}]),
        ("metadata", {"\ud800": "v"}),
        ("metadata", {"k": "\ud800"}),
        ("title", "nul\x00"),
        ("metadata", {"k\x00": "v"}),
    ],
)
@pytest.mark.parametrize("raw", [False, True], ids=["escaped", "raw-bytes"])
def test_a_nul_or_lone_surrogate_in_an_event_body_is_refused_naming_the_field(
    scene: Scene, field: str, value: Any, raw: bool
) -> None:
    """As a JSON escape it is valid JSON, refused with 422 naming the field; a lone
    surrogate as raw bytes (``surrogatepass``) is not UTF-8, which JSON must be: 400."""
    app, alice = scene.app, scene.alice
    not_utf8 = raw and "\\ud" in json.dumps(value)
    headers = alice.headers | {"Content-Type": "application/json"}
    for method, path, base in (
        ("POST", "/events", GOOD),
        ("PUT", f"/events/{scene.ids['event_id']}", {}),
    ):
        document = base | {field: value}
        if raw:
            content = json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
        else:
            content = json.dumps(document).encode()
        error = refused(
            app,
            lambda method=method, path=path, content=content: app.client.request(
                method, path, content=content, headers=headers
            ),
            400 if not_utf8 else 422,
        )
        if not_utf8:
            assert error["code"] == "invalid_json", error
        else:
            assert [d["field"] for d in error["details"]] == [field], error
    assert app.get(alice, scene.ids["event_id"])["title"] == GOOD["title"]


def cursor_cases() -> list[Any]:
    nested = [
        pytest.param(cursor_of(b"[" * 5_000 + b"]" * 5_000), id="nested-arrays"),
        pytest.param(cursor_of(b'{"a":' * 3_000 + b"1" + b"}" * 3_000), id="nested-objects"),
    ]
    key = str(uuid.uuid4())
    ends = [
        pytest.param(cursor_of(json.dumps([moment, key]).encode()), id=moment) for moment in MOMENTS
    ]
    return [*nested, *ends]


#: Every list that takes a cursor (`test_every_cursor_is_a_hostile_cursor_target`).
CURSOR_LISTS: Final = (
    "/events",
    "/events?start_date=2031-03-01&end_date=2031-03-31",
    "/events?start_date=2031-03-01&end_date=2031-03-31&expand=true",
    "/sync/logs",
    "/me/notices",
    "/admin/users",
    "/admin/audit",
)


@pytest.mark.parametrize("cursor", cursor_cases())
@pytest.mark.parametrize("path", CURSOR_LISTS)
def test_a_hostile_cursor_is_a_4xx_or_a_page_on_every_list(
    scene: Scene, path: str, cursor: str
) -> None:
    """Nested JSON, and positions at the calendar's ends: in UTC (as calsync makes them)
    they are pages; in other zones, where they have no UTC equivalent, 4xx. Every list
    that takes a cursor: Alice's, and the admin's for the admin lists."""
    app = scene.app
    reader = scene.admin if path.startswith("/admin/") else scene.alice
    url = f"{path}{'&' if '?' in path else '?'}cursor={cursor}"
    before = snapshot(app)
    response = app.client.get(url, headers=reader.headers)
    assert response.status_code in (200, 400, 422), response.text[:500]
    assert snapshot(app) == before


def test_pages_through_events_at_the_ends_of_the_calendar(scene: Scene) -> None:
    """Google holds events in years 1 and 9999; paging over them one at a time makes
    cursors at those ends, and every page is served."""
    app, alice = scene.app, scene.alice
    google = app.remote(alice)
    for start, end in (
        ("0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z"),
        ("9999-12-31T22:00:00Z", "9999-12-31T23:59:59Z"),
    ):
        body = {"summary": start[:4], "start": {"dateTime": start}, "end": {"dateTime": end}}
        google.insert(calendarId=alice.primary, body=body).execute()
    google.insert(
        calendarId=alice.primary,
        body={
            "summary": "last day",
            "start": {"date": "9999-12-30"},
            "end": {"date": "9999-12-31"},
        },
    ).execute()
    app.pull(alice)
    titles, cursor = [], None
    for _ in range(10):
        params = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
        page = app.client.get("/events", params=params, headers=alice.headers)
        assert page.status_code == 200, page.text[:500]
        titles += [e["title"] for e in page.json()["events"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert titles == ["0001", GOOD["title"], "last day", "9999"]


def document_fields() -> set[tuple[str, str, str]]:
    """Every (method, path, field) where the OpenAPI document lets a client put a string:
    body fields (in `Target.field`'s notation), query parameters and path ids."""
    routes = [Route(path, _unused, methods=[method]) for method, path in openapi.OPERATIONS]
    document = openapi.build_document(routes)
    schemas = document["components"]["schemas"]
    found: set[tuple[str, str, str]] = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("query", "path"):
                    mark = "?" if parameter["in"] == "query" else "/"
                    found.add((method.upper(), path, mark + parameter["name"]))
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema is not None:
                for field in _strings(schema, "", schemas):
                    found.add((method.upper(), path, field))
    return found


def _unused(_request: Any) -> None:  # pragma: no cover - the routes are never called
    return None


def _strings(schema: dict[str, Any], where: str, schemas: dict[str, Any]) -> Iterator[str]:
    if "$ref" in schema:
        yield from _strings(schemas[schema["$ref"].rsplit("/", 1)[1]], where, schemas)
        return
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        yield from _strings(option, where, schemas)
    if "const" in schema:  # one fixed value ({"create": "meet"}): no string to choose
        return
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if "string" in kinds or any(isinstance(v, str) for v in schema.get("enum", [])):
        yield where
    for name, part in schema.get("properties", {}).items():
        yield from _strings(part, f"{where}.{name}" if where else name, schemas)
    if "items" in schema:
        yield from _strings(schema["items"], f"{where}[]", schemas)
    if isinstance(schema.get("additionalProperties"), dict):
        yield f"{where}{{key}}"
        yield from _strings(schema["additionalProperties"], f"{where}{{}}", schemas)


#: Strings the document describes that are not texts a client chooses freely here: the
#: webhook receiver's headers are Google's (tests/fuzz/test_hostile_input.py covers
#: them) and ``Idempotency-Key``/``If-Match`` are headers, not in the document's query.
#: ``PATCH /events/{event_id}`` runs PUT's code (`calsync.events.writes.update`), whose
#: fields are all targets.
NOT_TARGETS: Final = {"POST /webhooks/google", "PATCH /events/{event_id}"}


def test_every_cursor_is_a_hostile_cursor_target() -> None:
    with_cursor = {path for _, path, field in document_fields() if field == "?cursor"}
    assert with_cursor == {path.split("?")[0] for path in CURSOR_LISTS}


def test_every_string_field_is_a_target() -> None:
    targets = {(t.method, t.path, t.field) for t in TARGETS}
    missing = {
        field for field in document_fields() if f"{field[0]} {field[1]}" not in NOT_TARGETS
    } - targets
    assert not missing, sorted(missing)
