"""GoogleCalendarClient against the emulator: listings, writes, errors, retries, auth.

Every test asserts what Google (the emulator) holds or logged afterwards, and what the
client returned or raised; none sleeps (the client's sleeps are recorded).
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa

from calsync import logs
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.providers.base import CalendarProvider, ChangesPage
from calsync.providers.errors import (
    AuthRevoked,
    Conflict,
    NotFound,
    PreconditionFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    SyncTokenExpired,
    Transient,
)
from calsync.providers.google import event_listing
from calsync.providers.google.client import GoogleCalendarClient
from calsync.providers.google.ids import google_event_id
from calsync.store.tables import OAuthToken
from tests.integration.providers.conftest import EVENTS_PATH, Connected

pytestmark = pytest.mark.integration

FORBIDDEN_WITH_SYNC_TOKEN = {"timeMin", "timeMax", "updatedMin", "q", "orderBy", "iCalUID"}


def meeting(title: str = "Planning", *, hour: int = 10) -> Event:
    start = datetime(2031, 3, 4, hour, 0)
    return Event(
        title=title,
        start=EventTime.at(start, "Europe/Berlin"),
        end=EventTime.at(start + timedelta(hours=1), "Europe/Berlin"),
        metadata={"matter": "42"},
    )


def seed(alice: Connected, titles: list[str]) -> list[dict[str, Any]]:
    """Events the user created on Google with another client."""
    events = alice.remote().events()
    body = {
        "start": {"dateTime": "2031-01-01T09:00:00Z"},
        "end": {"dateTime": "2031-01-01T10:00:00Z"},
    }
    return [
        events.insert(calendarId=alice.calendar_id, body={**body, "summary": t}).execute()
        for t in titles
    ]


def list_everything(
    client: GoogleCalendarClient, calendar_id: str, sync_token: str | None = None
) -> list[ChangesPage]:
    pages = [client.list_changes(calendar_id, sync_token=sync_token, page_token=None)]
    while pages[-1].next_page_token:
        pages.append(
            client.list_changes(
                calendar_id, sync_token=sync_token, page_token=pages[-1].next_page_token
            )
        )
    return pages


def queries(alice: Connected, **filters: str) -> list[dict[str, list[str]]]:
    return [
        parse_qs(r["query"]) if isinstance(r["query"], str) else r["query"]
        for r in alice.google_requests(**filters)
    ]


def insert(client: GoogleCalendarClient, alice: Connected, event: Event | None = None) -> Event:
    local_id = uuid.uuid4()
    return client.insert_event(
        alice.calendar_id,
        event or meeting(),
        event_id=google_event_id(local_id),
        calsync_id=str(local_id),
    )


# --- listings ----------------------------------------------------------------------------


def test_the_client_is_a_calendar_provider(alice: Connected) -> None:
    assert isinstance(alice.client(), CalendarProvider)


def test_a_full_listing_pages_to_a_sync_token_then_lists_only_changes(
    alice_in_each_mode: Connected,
) -> None:
    alice = alice_in_each_mode
    # Given five events on Google
    seeded = seed(alice, [f"event {n}" for n in range(5)])
    client = alice.client(page_size=2)

    # When calsync lists everything
    pages = list_everything(client, alice.calendar_id)

    # Then it took three pages, only the last with a sync token, and got every event
    assert [bool(p.next_page_token) for p in pages] == [True, True, False]
    assert [p.next_sync_token is not None for p in pages] == [False, False, True]
    listed = {e.provider_event_id: e for p in pages for e in p.events}
    assert set(listed) == {s["id"] for s in seeded}
    assert listed[seeded[0]["id"]].title == "event 0"
    assert listed[seeded[0]["id"]].etag == seeded[0]["etag"]

    # When one changes and one is deleted on Google, and calsync lists incrementally
    remote = alice.remote().events()
    remote.patch(
        calendarId=alice.calendar_id, eventId=seeded[1]["id"], body={"summary": "moved"}
    ).execute()
    remote.delete(calendarId=alice.calendar_id, eventId=seeded[2]["id"]).execute()
    sync_token = pages[-1].next_sync_token
    changes = list_everything(client, alice.calendar_id, sync_token)

    # Then only those two come back, the deleted one as a tombstone, with a new token
    changed = {e.provider_event_id: e for p in changes for e in p.events}
    assert set(changed) == {seeded[1]["id"], seeded[2]["id"]}
    assert changed[seeded[1]["id"]].title == "moved"
    assert changed[seeded[2]["id"]].status is EventStatus.CANCELLED
    assert changes[-1].next_sync_token not in (None, sync_token)
    assert client.api_calls == 3 + len(changes)


def test_listings_ask_for_masters_and_tombstones_and_nothing_else_with_a_token(
    alice: Connected,
) -> None:
    seed(alice, ["one"])
    client = alice.client()
    first = client.list_changes(alice.calendar_id, sync_token=None, page_token=None)
    assert first.next_sync_token is not None
    client.list_changes(alice.calendar_id, sync_token=first.next_sync_token, page_token=None)

    full, incremental = queries(alice, method="GET", path_regex=EVENTS_PATH)
    for query in (full, incremental):
        assert query["maxResults"] == ["2500"]
        assert query["showDeleted"] == ["true"]
        assert query["singleEvents"] == ["false"]
    assert "syncToken" not in full
    assert incremental["syncToken"] == [first.next_sync_token]
    assert not FORBIDDEN_WITH_SYNC_TOKEN & set(incremental)


def test_an_invalidated_sync_token_is_sync_token_expired(alice: Connected) -> None:
    client = alice.client()
    token = list_everything(client, alice.calendar_id)[-1].next_sync_token
    alice.control.invalidate_sync_tokens(alice.calendar_id)

    with pytest.raises(SyncTokenExpired) as caught:
        client.list_changes(alice.calendar_id, sync_token=token, page_token=None)

    assert caught.value.status == 410
    assert caught.value.reason == "fullSyncRequired"
    assert isinstance(caught.value.__cause__, Exception)
    assert token is not None
    assert token not in str(caught.value)


def test_listing_a_calendar_that_is_gone_is_not_found(alice: Connected) -> None:
    with pytest.raises(NotFound):
        alice.client().list_changes("nobody@example.com", sync_token=None, page_token=None)


def test_the_calendar_list_includes_hidden_and_shared_calendars_with_roles(
    alice: Connected,
) -> None:
    alice.control.add_calendar(alice.email, "Team", access_role="reader")
    alice.control.add_calendar(alice.email, "Side project")

    calendars = {c.summary: c for c in alice.client().list_calendars()}

    assert calendars[alice.email].primary
    assert calendars["Team"].access_role == "reader"
    assert not calendars["Team"].writable
    assert calendars["Side project"].writable
    (query,) = queries(alice, path="/calendar/v3/users/me/calendarList")
    assert query["showHidden"] == ["true"]
    assert query["showDeleted"] == ["true"]


# --- writes --------------------------------------------------------------------------------


def test_insert_uses_the_deterministic_id_and_a_retried_insert_is_a_conflict(
    alice: Connected,
) -> None:
    client = alice.client()
    local_id = uuid.uuid4()
    event_id = google_event_id(local_id)

    created = client.insert_event(
        alice.calendar_id, meeting(), event_id=event_id, calsync_id=str(local_id)
    )
    with pytest.raises(Conflict):
        client.insert_event(
            alice.calendar_id, meeting("again"), event_id=event_id, calsync_id=str(local_id)
        )

    assert created.provider_event_id == event_id
    assert created.calsync_id == str(local_id)
    assert created.etag
    on_google = alice.remote().events().get(calendarId=alice.calendar_id, eventId=event_id)
    stored = on_google.execute()
    assert stored["summary"] == "Planning"
    assert stored["extendedProperties"]["private"]["calsync_id"] == str(local_id)
    assert client.get_event(alice.calendar_id, event_id) == created
    inserts = queries(alice, method="POST", path_regex=EVENTS_PATH)
    assert [q["sendUpdates"] for q in inserts] == [["all"], ["all"]]


def test_patch_with_a_stale_etag_is_precondition_failed_and_changes_nothing(
    alice: Connected,
) -> None:
    client = alice.client()
    created = insert(client, alice)
    assert created.provider_event_id
    assert created.calsync_id
    assert created.etag
    event_id, calsync_id = created.provider_event_id, created.calsync_id
    moved = client.patch_event(
        alice.calendar_id,
        event_id,
        meeting("Moved", hour=11),
        calsync_id=calsync_id,
        if_match=created.etag,
        previous=created,
    )

    with pytest.raises(PreconditionFailed) as caught:
        client.patch_event(
            alice.calendar_id,
            event_id,
            meeting("Lost update"),
            calsync_id=calsync_id,
            if_match=created.etag,
        )

    assert caught.value.status == 412
    current = client.get_event(alice.calendar_id, event_id)
    assert current.title == "Moved"
    assert current.etag == moved.etag != created.etag
    assert current.start == meeting(hour=11).start


def test_update_replaces_the_event_and_honours_if_match(alice: Connected) -> None:
    client = alice.client()
    created = insert(client, alice)
    assert created.provider_event_id
    assert created.calsync_id
    replacement = Event(
        title="Offsite",
        start=EventTime.on(datetime(2031, 5, 1).date()),
        end=EventTime.on(datetime(2031, 5, 2).date()),
    )

    updated = client.update_event(
        alice.calendar_id,
        created.provider_event_id,
        replacement,
        calsync_id=created.calsync_id,
        if_match=created.etag,
    )
    with pytest.raises(PreconditionFailed):
        client.update_event(
            alice.calendar_id,
            created.provider_event_id,
            replacement,
            calsync_id=created.calsync_id,
            if_match=created.etag,
        )

    assert updated.all_day
    assert updated.metadata == {}
    assert updated.calsync_id == created.calsync_id
    assert updated.timezone == "UTC"  # the calendar's zone, for all-day events


def test_delete_twice_is_not_found_and_a_stale_etag_keeps_the_event(alice: Connected) -> None:
    client = alice.client()
    kept = insert(client, alice)
    gone = insert(client, alice)
    assert kept.provider_event_id
    assert gone.provider_event_id
    assert kept.calsync_id
    client.patch_event(
        alice.calendar_id,
        kept.provider_event_id,
        meeting("Changed"),
        calsync_id=kept.calsync_id,
        if_match=None,
    )

    client.delete_event(alice.calendar_id, gone.provider_event_id, if_match=gone.etag)
    with pytest.raises(NotFound):
        client.delete_event(alice.calendar_id, gone.provider_event_id, if_match=None)
    with pytest.raises(PreconditionFailed):
        client.delete_event(alice.calendar_id, kept.provider_event_id, if_match=kept.etag)

    assert client.get_event(alice.calendar_id, gone.provider_event_id).status == "cancelled"
    assert client.get_event(alice.calendar_id, kept.provider_event_id).status == "confirmed"


def test_get_of_an_unknown_event_is_not_found(alice: Connected) -> None:
    with pytest.raises(NotFound) as caught:
        alice.client().get_event(alice.calendar_id, "nosuchevent0")
    assert caught.value.status == 404


def test_writes_send_the_configured_send_updates_and_if_match(alice: Connected) -> None:
    client = alice.client()
    created = insert(client, alice)
    assert created.provider_event_id
    client.delete_event(alice.calendar_id, created.provider_event_id, if_match=created.etag)

    (deleted,) = queries(alice, method="DELETE")
    assert deleted["sendUpdates"] == ["all"]


# --- push channels ------------------------------------------------------------------------


def test_watch_then_stop_channels(alice: Connected) -> None:
    client = alice.client()
    before = datetime.now(UTC)

    events = client.watch_events(
        alice.calendar_id,
        channel_id=str(uuid.uuid4()),
        token="hmac-of-the-id",
        address="http://127.0.0.1:9/webhooks/google",
        ttl=timedelta(days=2),
    )
    calendars = client.watch_calendar_list(
        channel_id=str(uuid.uuid4()),
        token="another-hmac",
        address="http://127.0.0.1:9/webhooks/google",
        ttl=timedelta(hours=6),
    )

    assert events.resource_id
    assert calendars.resource_id
    assert events.expiration is not None
    assert calendars.expiration is not None
    assert abs(events.expiration - (before + timedelta(days=2))) < timedelta(minutes=1)
    assert abs(calendars.expiration - (before + timedelta(hours=6))) < timedelta(minutes=1)
    channels = {c["id"]: c for c in alice.control.channels()}
    assert channels[events.channel_id]["token"] == "hmac-of-the-id"
    assert channels[events.channel_id]["address"] == "http://127.0.0.1:9/webhooks/google"
    assert channels[calendars.channel_id]["watching"] != channels[events.channel_id]["watching"]

    client.stop_channel(channel_id=events.channel_id, resource_id=events.resource_id)
    with pytest.raises(NotFound):
        client.stop_channel(channel_id=events.channel_id, resource_id="wrong")
    assert {c["id"]: c for c in alice.control.channels()}[events.channel_id]["stopped"]


# --- retries and rate limits --------------------------------------------------------------


def test_a_503_is_retried_with_backoff_until_it_succeeds(alice: Connected) -> None:
    client = alice.client()
    alice.control.add_fault(kind="status", status=503, count=2, path="/events")

    page = client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert page.next_sync_token
    statuses = [r["status"] for r in alice.google_requests(path_regex=EVENTS_PATH)]
    assert statuses == [503, 503, 200]
    assert client.api_calls == 3
    assert len(alice.sleeps) == 2
    assert all(0 <= s <= 8 for s in alice.sleeps)


def test_a_lasting_server_error_is_transient_after_a_few_attempts(alice: Connected) -> None:
    client = alice.client()
    alice.control.add_fault(kind="status", status=500, count=None, path="/events")

    with pytest.raises(Transient) as caught:
        client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert caught.value.status == 500
    assert len(alice.google_requests(path_regex=EVENTS_PATH)) == 4
    assert client.api_calls == 4
    assert len(alice.sleeps) == 3


def test_a_reset_connection_is_retried(alice: Connected) -> None:
    client = alice.client()
    alice.control.add_fault(kind="reset", count=1, path="/events")

    page = client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert page.next_sync_token
    assert client.api_calls == 2
    assert len(alice.sleeps) == 1


def test_a_429_waits_as_long_as_retry_after_says(alice: Connected) -> None:
    client = alice.client()
    alice.control.add_fault(
        kind="status",
        status=429,
        reason="rateLimitExceeded",
        headers={"Retry-After": "7"},
        count=1,
        path="/events",
    )

    client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert len(alice.sleeps) == 1
    assert 7 <= alice.sleeps[0] <= 8
    assert client.api_calls == 2


@pytest.mark.parametrize("reason", ["userRateLimitExceeded", "rateLimitExceeded"])
def test_403_rate_limits_are_retried(alice: Connected, reason: str) -> None:
    client = alice.client()
    alice.control.add_fault(kind="status", status=403, reason=reason, count=2, path="/events")

    client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert client.api_calls == 3


def test_a_long_retry_after_goes_back_to_the_caller_at_once(alice: Connected) -> None:
    client = alice.client()
    alice.control.add_fault(
        kind="status", status=429, headers={"Retry-After": "120"}, count=None, path="/events"
    )

    with pytest.raises(RateLimited) as caught:
        client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert caught.value.retry_after == 120
    assert client.api_calls == 1
    assert alice.sleeps == []


def test_quota_exceeded_is_not_retried(alice: Connected) -> None:
    client = alice.client()
    alice.control.add_fault(kind="status", status=403, reason="quotaExceeded", path="/events")

    with pytest.raises(QuotaExceeded):
        insert(client, alice)

    assert len(alice.google_requests(method="POST", path_regex=EVENTS_PATH)) == 1


def test_other_4xx_are_permanent_and_not_retried(alice: Connected) -> None:
    client = alice.client()
    alice.control.add_fault(kind="status", status=400, reason="invalid", path="/events")

    with pytest.raises(ProviderError) as caught:
        insert(client, alice)

    assert type(caught.value).__name__ == "Permanent"
    assert len(alice.google_requests(method="POST", path_regex=EVENTS_PATH)) == 1


# --- authorisation ------------------------------------------------------------------------


def test_a_401_refreshes_the_token_once_and_retries(alice_in_each_mode: Connected) -> None:
    alice = alice_in_each_mode
    client = alice.client()
    before = alice.stored_access_token()
    alice.control.add_fault(kind="expire_token", count=1, path="/events")

    page = client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert page.next_sync_token
    assert client.api_calls == 2
    assert [r["status"] for r in alice.google_requests(path_regex=EVENTS_PATH)] == [401, 200]
    assert alice.stored_access_token() != before
    assert alice.sleeps == []  # a refresh is not a backoff


def test_a_second_401_is_auth_revoked(alice: Connected) -> None:
    client = alice.client()
    alice.control.add_fault(kind="status", status=401, reason="authError", count=2, path="/events")

    with pytest.raises(AuthRevoked) as caught:
        client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert client.api_calls == 2
    assert alice.stored_access_token() not in str(caught.value)


def test_a_revoked_grant_is_auth_revoked_and_marks_the_account(alice: Connected) -> None:
    client = alice.client()
    alice.control.revoke_user(alice.email)

    with pytest.raises(AuthRevoked):
        client.list_changes(alice.calendar_id, sync_token=None, page_token=None)
    with pytest.raises(AuthRevoked):  # and no further call reaches Google
        client.get_event(alice.calendar_id, "whatever0")

    assert client.api_calls == 1
    with alice.services.sessions() as session:
        assert session.scalar(sa.select(OAuthToken.status)) == "needs_reauth"


def test_a_user_who_never_connected_is_auth_revoked(alice: Connected) -> None:
    client = alice.providers.for_user(uuid.uuid4())

    with pytest.raises(AuthRevoked):
        client.list_calendars()

    assert client.api_calls == 0


def test_error_messages_never_carry_tokens(alice: Connected) -> None:
    client = alice.client()
    token = list_everything(client, alice.calendar_id)[-1].next_sync_token
    assert token is not None
    access = alice.stored_access_token()
    alice.control.add_fault(
        kind="status", status=400, reason="invalid", message=f"bad {token} {access}"
    )

    with pytest.raises(ProviderError) as caught:
        client.list_changes(alice.calendar_id, sync_token=token, page_token=None)

    for text in (str(caught.value), repr(caught.value), caught.value.message):
        assert token not in text
        assert access not in text


def test_a_refresh_that_fails_for_a_moment_is_retried_then_the_call_succeeds(
    alice: Connected,
) -> None:
    client = alice.client()
    alice.control.add_fault(kind="expire_token", count=1, path="/events")
    alice.control.add_fault(kind="status", status=503, count=1, path="^/token$")

    page = client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert page.next_sync_token
    assert [r["status"] for r in alice.google_requests(path_regex=EVENTS_PATH)] == [401, 401, 200]
    assert len(alice.sleeps) == 1


def test_listing_all_pages_at_once_equals_following_the_page_tokens(
    alice_in_each_mode: Connected,
) -> None:
    alice = alice_in_each_mode
    seed(alice, [f"event {n}" for n in range(5)])
    paged = alice.client(page_size=2)
    pages = list_everything(paged, alice.calendar_id)

    # When the client lists every page itself (mapping a page while the next is fetched)
    client = alice.client(page_size=2)
    threads = threading.active_count()
    listing = client.list_all_changes(alice.calendar_id, sync_token=None)

    # Then it is the pages' events in order, with the last page's token, in as many calls
    assert listing.events == tuple(e for p in pages for e in p.events)
    assert listing.next_page_token is None
    assert listing.next_sync_token is not None
    assert client.api_calls == paged.api_calls == 3
    assert threading.active_count() == threads  # the helper thread is gone

    # And listing incrementally from that token gives just the changes
    remote = alice.remote().events()
    moved = remote.patch(
        calendarId=alice.calendar_id,
        eventId=listing.events[0].provider_event_id,
        body={"summary": "moved"},
    ).execute()
    changes = client.list_all_changes(alice.calendar_id, sync_token=listing.next_sync_token)
    assert [(e.provider_event_id, e.title) for e in changes.events] == [(moved["id"], "moved")]


def test_a_failing_later_page_fails_the_whole_listing(alice: Connected) -> None:
    seed(alice, [f"event {n}" for n in range(5)])
    client = alice.client(page_size=2)
    answer_of = client._listing._changes_answer
    calls: list[str | None] = []

    def failing_from_the_second_page(
        calendar_id: str, sync_token: str | None, page_token: str | None
    ) -> Any:
        calls.append(page_token)
        if len(calls) == 2:
            alice.control.add_fault(kind="status", status=500, count=None, path="/events")
        return answer_of(calendar_id, sync_token, page_token)

    client._listing._changes_answer = failing_from_the_second_page  # type: ignore[method-assign]
    threads = threading.active_count()

    with pytest.raises(Transient):
        client.list_all_changes(alice.calendar_id, sync_token=None)

    assert len(calls) == 2  # the second page's request failed
    assert calls[1] is not None
    assert client.api_calls == 1 + 4  # the first page, then every attempt of the second
    assert len(alice.sleeps) == 3
    assert threading.active_count() == threads


def test_pages_mapped_on_the_helper_thread_keep_the_log_context(
    alice: Connected, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(alice, [f"event {n}" for n in range(5)])
    client = alice.client(page_size=2)
    seen: list[tuple[int, str | None]] = []
    mapping = event_listing.event_from_google

    def watched(resource: Any, zone: str) -> Event:
        seen.append((threading.get_ident(), logs.current_context().get("job")))
        return mapping(resource, zone)

    monkeypatch.setattr(event_listing, "event_from_google", watched)
    with logs.log_context(job="sync_calendar"):
        listing = client.list_all_changes(alice.calendar_id, sync_token=None)

    assert len(listing.events) == 5
    assert {job for _, job in seen} == {"sync_calendar"}
    # the first two pages were mapped on the helper thread, the last on this one
    assert [thread == threading.get_ident() for thread, _ in seen] == [False] * 4 + [True]
