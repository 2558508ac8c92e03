"""Several users signed in through Google, on each database: every user's calendars are
pulled with that user's own credentials, and each sees exactly their own events.

The bug this guards against: the pull's lease statement read the owner's token through
a subquery in ``RETURNING``, which SQLite compiled uncorrelated, so every calendar was
listed with the first user's token; Google answered 404 for the second user's calendar,
and the pull deselected it for good.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.store.tables import Calendar
from tests.integration.sync.conftest import SyncStack, wait_until

pytestmark = pytest.mark.integration

EMAILS = ("ann@example.com", "ben@example.com", "cat@example.com")


def sign_in(stack: SyncStack, email: str) -> dict[str, str]:
    """The whole OAuth dance over HTTP, as a browser does it; the JWT's headers."""
    with httpx.Client(base_url=stack.url) as browser:
        start = browser.get("/auth/google", params={"login_hint": email})
        assert start.status_code == 302, start.text
        at_google = httpx.get(start.headers["location"], follow_redirects=False)
        back = urlsplit(at_google.headers["location"])
        answer = browser.get(f"{back.path}?{back.query}")
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def titles(stack: SyncStack, headers: dict[str, str]) -> list[str]:
    answer = httpx.get(
        f"{stack.url}/events",
        headers=headers,
        params={"start_date": "2026-01-01", "end_date": "2026-12-31"},
    )
    assert answer.status_code == 200, answer.text
    return sorted(e["title"] for e in answer.json()["events"])


def test_every_user_gets_exactly_their_own_calendar(any_stack: SyncStack) -> None:
    # Given three users who signed in one after another
    headers = {email: sign_in(any_stack, email) for email in EMAILS}
    # When each adds an event to their own Google calendar with another client
    for email in EMAILS:
        any_stack.google_as(email).events().insert(
            calendarId="primary",
            body={
                "summary": f"{email}'s meeting",
                "start": {"dateTime": "2026-06-01T09:00:00Z"},
                "end": {"dateTime": "2026-06-01T10:00:00Z"},
            },
        ).execute()
    # Then each user's GET /events lists exactly their own event, through the push and pull
    for email in EMAILS:
        wait_until(
            lambda email=email: titles(any_stack, headers[email]) == [f"{email}'s meeting"],
            what=f"{email}'s event in their own listing",
        )
    # And every calendar is still selected and healthy
    with any_stack.services.sessions() as session:
        states = session.execute(sa.select(Calendar.selected, Calendar.last_sync_status)).all()
    assert len(states) == len(EMAILS)
    assert all(selected and status == "ok" for selected, status in states), states
