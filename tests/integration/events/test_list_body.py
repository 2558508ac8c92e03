"""A list's body joined with one copy (decision IV3): the same bytes as the items joined
into the document, and the API's pages, on both databases for two users, byte for byte
today's expansion; another user's event is still 404 and another user's calendar lists
nothing of theirs.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from calsync.web.json_body import list_body
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, filled_month
from tests.integration.events.test_page_reads import expanded, listed

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "production"])
def filled(
    request: pytest.FixtureRequest, fake_google: FakeGoogle
) -> Iterator[tuple[EventsApp, list[User]]]:
    """Two users with a series (one instance moved) and a single each, the model filled."""
    yield from filled_month(request, fake_google, users=2, count=6, tag="rows")


def test_pages_are_todays_expansion_and_nobody_elses(filled: tuple[EventsApp, list[User]]) -> None:
    app, people = filled
    pages = [listed(app, user) for user in people]
    for user, found in zip(people, pages, strict=True):
        assert [len(page["events"]) for page in found] == [3, 2]
        assert found == expanded(app, user)
    mine, theirs = people
    other_event = pages[1][0]["events"][0]["id"]
    assert app.client.get(f"/events/{other_event}", headers=mine.headers).status_code == 404
    if theirs.calendar_id is not None:
        answer = app.client.get(
            "/events",
            params={
                "start_date": "2031-03-01",
                "end_date": "2031-03-31",
                "expand": "true",
                "calendar_id": str(theirs.calendar_id),
            },
            headers=mine.headers,
        )
        assert answer.status_code in (200, 404), answer.text
        if answer.status_code == 200:
            assert answer.json()["events"] == []


@pytest.mark.parametrize("count", [0, 1, 2, 3, 200])
@pytest.mark.parametrize("cursor", [None, "c2NvcGU"])
def test_a_list_body_is_the_items_joined(count: int, cursor: str | None) -> None:
    items = [orjson.dumps({"id": f"e{n}", "summary": "x" * n}) for n in range(count)]
    body = list_body(items, cursor)
    assert body == orjson.dumps({"events": [orjson.loads(i) for i in items], "next_cursor": cursor})
    assert (
        body
        == b'{"events":[' + b",".join(items) + b'],"next_cursor":' + orjson.dumps(cursor) + b"}"
    )
