"""Signing in again after Google access was revoked resumes all of the user's syncing.

Found by the 500-user simulation (seed 1614620845, issue 15): a user whose grant was
revoked at Google and who then signed in again through ``/auth/google`` never converged
(writes acknowledged by calsync never reached Google, Google's changes never arrived).
Two users on each database, the revoked one and one who must be unaffected; the sign-in
goes through the real OAuth dance against the emulator; the jobs' use cases run by hand
(no worker threads) in the order the queue would run them, so each step's effect is seen.

The moments that matter:
- a pull finds the grant revoked (its refresh gets ``invalid_grant``) while the user is
  signing in again: the mark "needs re-authorisation" must not land on the new grant;
- a change notification (here ``POST /sync``) made the calendar dirty during that failed
  pull: the pull that follows the sign-in must still be queued.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.providers.errors import ProviderError
from calsync.scheduler import due_calendars, due_pushes
from calsync.store.list_queue import note_calendar_list_change
from calsync.store.tables import Calendar
from calsync.sync.connect import connect_user, follow_calendar_list
from calsync.sync.pull import pull_calendar
from calsync.sync.write_back import push_outbox
from tests.integration.sync.conftest import SyncStack, wait_until

pytestmark = pytest.mark.integration

ANN, BEN = "ann@example.com", "ben@example.com"


def body(title: str, day: int) -> dict[str, Any]:
    return {
        "title": title,
        "start_time": f"2026-06-{day:02d}T09:00:00Z",
        "end_time": f"2026-06-{day:02d}T10:00:00Z",
        "timezone": "UTC",
    }


def create(stack: SyncStack, user_id: uuid.UUID, title: str, day: int) -> dict[str, Any]:
    answer = httpx.post(
        f"{stack.url}/events", headers=stack.headers(user_id), json=body(title, day)
    )
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


def edit(stack: SyncStack, user_id: uuid.UUID, event_id: str, **fields: Any) -> None:
    answer = httpx.put(
        f"{stack.url}/events/{event_id}", headers=stack.headers(user_id), json=fields
    )
    assert answer.status_code == 200, answer.text


def sign_in(stack: SyncStack, email: str) -> dict[str, Any]:
    """Sign `email` in through ``/auth/google``, the emulator consenting."""
    with httpx.Client(base_url=stack.url, timeout=30.0) as browser:
        start = browser.get("/auth/google", params={"login_hint": email}, follow_redirects=False)
        assert start.status_code == 302, start.text
        at_google = httpx.get(start.headers["location"], follow_redirects=False)
        back = urlsplit(at_google.headers["location"])
        answer = browser.get(f"{back.path}?{back.query}")
    assert answer.status_code == 200, answer.text
    signed: dict[str, Any] = answer.json()
    return signed


def status_of(stack: SyncStack, user_id: uuid.UUID) -> str:
    answer = httpx.get(f"{stack.url}/me", headers=stack.headers(user_id))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


def run_jobs(stack: SyncStack, pulls: list[uuid.UUID]) -> None:
    """What the workers and the scheduler do, until nothing is left: the queued pulls
    (`pulls`) and those the calendar sweep claims, then the pushes the outbox sweep finds
    due, a few rounds (a pull may queue a push and the other way round)."""
    services = stack.services
    for _ in range(4):
        queued = [*pulls, *due_calendars(services, services.clock())]
        pulls = []
        for calendar_id in dict.fromkeys(queued):
            outcome = pull_calendar(services, calendar_id)
            if outcome.again_in is not None:
                pulls.append(calendar_id)
        for event_id in due_pushes(services.sessions, services.clock()):
            push_outbox(services, services.providers, event_id)


def google_titles(stack: SyncStack, email: str) -> Counter[str]:
    """How many live events of each title Google holds in `email`'s primary calendar."""
    items = (
        stack.google_as(email).events().list(calendarId=email, maxResults=2500).execute()["items"]
    )
    return Counter(item.get("summary", "") for item in items if item["status"] != "cancelled")


def local_titles(stack: SyncStack, user_id: uuid.UUID) -> Counter[str]:
    answer = httpx.get(
        f"{stack.url}/events",
        headers=stack.headers(user_id),
        params={"start_date": "2026-05-01", "end_date": "2026-08-01"},
    )
    assert answer.status_code == 200, answer.text
    return Counter(event["title"] for event in answer.json()["events"])


def hold_pull_at_refresh(stack: SyncStack, calendar_id: uuid.UUID, user: str) -> Any:
    """Start a pull of `calendar_id` whose token refresh Google holds for 2 s; return its
    future once the listing was refused (401) and the refresh is on its way."""
    stack.control.clear_requests()
    stack.control.add_fault(kind="latency", latency_ms=2000, method="POST", path="^/token$")
    pool = ThreadPoolExecutor(1)
    pulling = pool.submit(pull_calendar, stack.services, calendar_id)
    pool.shutdown(wait=False)
    wait_until(
        lambda: any(
            r["status"] == 401 for r in stack.control.requests(user=user, path_regex="/events")
        ),
        what="the listing refused with the revoked token",
    )
    time.sleep(0.2)  # the refresh is sent, and held
    return pulling


@dataclass(frozen=True)
class People:
    """Ann (whose grant is revoked) and Ben (who must be unaffected), connected and
    pulled, by calsync's user ids; and calsync's id of Ann's primary calendar."""

    ann: uuid.UUID
    ben: uuid.UUID
    ann_calendar: uuid.UUID


@pytest.fixture
def people(hand_stack: SyncStack) -> People:
    """Ann and Ben, connected to `hand_stack` and each calendar pulled once."""
    ben = hand_stack.connect_pulled(BEN)
    ann = hand_stack.connect_pulled(ANN)
    return People(ann, ben, hand_stack.calendar_id(ann, ANN))


def made_on_google(stack: SyncStack, day: int) -> None:
    """Another client (not calsync) adds an event to Ann's calendar on June `day`."""
    stack.google_as(ANN).events().insert(
        calendarId=ANN,
        body={
            "summary": "made on Google while revoked",
            "start": {"dateTime": f"2026-06-{day:02d}T09:00:00Z"},
            "end": {"dateTime": f"2026-06-{day:02d}T10:00:00Z"},
        },
    ).execute()


def kicked_during_a_revoked_pull(stack: SyncStack, people: People) -> Any:
    """A pull of Ann's calendar that finds her grant revoked, held at its refresh while a
    change notification (``POST /sync``) makes the calendar dirty; the pull's future."""
    pulling = hold_pull_at_refresh(stack, people.ann_calendar, ANN)
    kicked = httpx.post(
        f"{stack.url}/sync",
        headers=stack.headers(people.ann),
        params={"calendar_id": str(people.ann_calendar)},
    )
    assert kicked.status_code == 202, kicked.text
    return pulling


def test_signing_in_while_a_pull_finds_the_grant_revoked_resumes_everything(
    hand_stack: SyncStack, people: People
) -> None:
    stack = hand_stack
    # Given Ann and Ben, connected and pulled, each with acknowledged writes not yet pushed
    ann, ben = people.ann, people.ben
    # (Ann signed in through /auth/google before, so the sign-in below finds her by her
    # Google subject and changes nothing of her row but, if needed, its status)
    sign_in(stack, ANN)
    pushed_before = create(stack, ann, "before revoke, pushed", 1)
    run_jobs(stack, [])
    waiting = create(stack, ann, "before revoke, waiting", 2)
    create(stack, ben, "ben's meeting", 3)
    # When Ann revokes calsync's access at Google, and another client changes her calendar
    assert stack.control.revoke_user(ANN) >= 1
    made_on_google(stack, 4)
    # and she writes through the API before calsync learnt of it (accepted and queued)
    during = create(stack, ann, "while revoked", 5)
    edit(stack, ann, pushed_before["id"], location="room 2")
    # and a pull of her calendar finds the grant revoked while she signs in again, with a
    # change notification (POST /sync) made during that pull
    pulling = kicked_during_a_revoked_pull(stack, people)
    signed = sign_in(stack, ANN)
    assert signed["user"]["id"] == str(ann)
    # the pull may fail (it refreshed the old grant) or go on with the new tokens
    with contextlib.suppress(ProviderError):
        pulling.result(timeout=30)
    # Then Ann is active again, whatever the order the pull and the sign-in ended in
    assert status_of(stack, ann) == "active"
    # When the connection the sign-in queued runs, and then the workers and sweeps
    run_jobs(stack, connect_user(stack.services, ann))
    # Then every acknowledged write of Ann's is on Google exactly once, with its edit
    titles = google_titles(stack, ANN)
    for made in (pushed_before, waiting, during):
        assert titles[made["title"]] == 1, titles
    on_google = (
        stack.google_as(ANN)
        .events()
        .get(calendarId=ANN, eventId=pushed_before["google_event_id"])
        .execute()
    )
    assert on_google.get("location") == "room 2"
    # and Google's change is in calsync, and the two sides agree event by event
    assert local_titles(stack, ann)["made on Google while revoked"] == 1
    assert stack.local_events(ANN) == stack.remote_events(ANN, ANN)
    # And Ben was never touched: active, his write on Google once
    assert status_of(stack, ben) == "active"
    assert google_titles(stack, BEN)["ben's meeting"] == 1


def test_a_calendar_changed_during_the_pull_that_found_the_grant_revoked_is_pulled_after_sign_in(
    hand_stack: SyncStack, people: People
) -> None:
    stack = hand_stack
    # Given Ann and Ben, connected and pulled
    ann, ben, ann_calendar = people.ann, people.ben, people.ann_calendar
    # When Ann revokes calsync's access, and a pull finds it out while a change
    # notification (POST /sync) makes her calendar dirty
    stack.control.revoke_user(ANN)
    pulling = kicked_during_a_revoked_pull(stack, people)
    with pytest.raises(ProviderError):
        pulling.result(timeout=30)
    # Then she must sign in again: POST /sync says so, her writes are still accepted
    assert status_of(stack, ann) == "needs_reauth"
    refused = httpx.post(f"{stack.url}/sync", headers=stack.headers(ann))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "needs_reauth"
    waiting = create(stack, ann, "written while revoked", 6)
    # and another client changes her calendar on Google meanwhile
    made_on_google(stack, 7)
    ben_event = create(stack, ben, "ben's meeting", 8)
    # When she signs in again and the queued connection runs, then workers and sweeps
    sign_in(stack, ANN)
    assert status_of(stack, ann) == "active"
    queued = connect_user(stack.services, ann)
    # Then her calendar's pull is queued at once (not after a lost-slot timeout)
    assert ann_calendar in queued
    run_jobs(stack, queued)
    # and both sides agree: her write on Google once, Google's change in calsync
    assert google_titles(stack, ANN)[waiting["title"]] == 1
    assert local_titles(stack, ann)["made on Google while revoked"] == 1
    assert stack.local_events(ANN) == stack.remote_events(ANN, ANN)
    # And Ben's write is on Google once
    assert google_titles(stack, BEN)[ben_event["title"]] == 1


def test_a_calendar_list_read_stopped_by_the_revoke_does_not_hold_its_slot(
    hand_stack: SyncStack, people: People
) -> None:
    stack = hand_stack
    # Given Ann and Ben, connected and pulled
    ann, ben = people.ann, people.ben
    # When Ann revokes calsync's access and a read of her calendar list finds it out
    stack.control.revoke_user(ANN)
    with pytest.raises(ProviderError):
        follow_calendar_list(stack.services, ann)
    # and she signs in again
    sign_in(stack, ANN)
    # Then the next calendar-list notification (as the webhook records it) claims a read
    # at once, for her as for Ben, instead of waiting a sync lease for the sweep
    with stack.services.sessions.begin() as session:
        now = stack.services.clock()
        assert note_calendar_list_change(session, ann, now)
        assert note_calendar_list_change(session, ben, now)
    # and that read, once it ran, finds a calendar shared with her meanwhile
    shared = stack.google_as(BEN).calendars().insert(body={"summary": "for ann"}).execute()["id"]
    stack.control.share(shared, ANN, "reader")
    follow_calendar_list(stack.services, ann)
    with stack.services.sessions() as session:
        listed = session.scalars(
            sa.select(Calendar.provider_calendar_id).where(Calendar.user_id == ann)
        ).all()
    assert shared in listed
