"""Watch channels: real POSTs with X-Goog-* headers, stop, expiry, failures, drops."""

from __future__ import annotations

import threading
from collections.abc import Callable

from calsync.emulator.testing import EmulatorControl, PushReceiver
from tests.integration.emulator.conftest import Account, timed
from tests.integration.emulator.helpers import google_error


def watch(account: Account, calendar_id: str, receiver: PushReceiver, **extra: object) -> dict:  # type: ignore[type-arg]
    body = {"id": "chan-1", "type": "web_hook", "address": receiver.url, "token": "secret-1"}
    return dict(account.service.events().watch(calendarId=calendar_id, body=body | extra).execute())


def test_watch_sends_sync_then_exists_with_googles_headers(
    control: EmulatorControl, account: Account, calendar_id: str, receiver: PushReceiver
) -> None:
    channel = watch(account, calendar_id, receiver)
    assert channel["id"] == "chan-1"
    assert channel["resourceId"]
    assert channel["resourceUri"]
    assert int(channel["expiration"]) > 0

    events = account.service.events()
    created = events.insert(calendarId=calendar_id, body=timed("2026-11-21", 9)).execute()
    events.patch(calendarId=calendar_id, eventId=created["id"], body={"summary": "x"}).execute()
    events.delete(calendarId=calendar_id, eventId=created["id"]).execute()

    posts = receiver.wait_for(4)
    assert len(posts) == 4
    states = [p.headers["X-Goog-Resource-State"] for p in posts]
    assert states == ["sync", "exists", "exists", "exists"]
    for post in posts:
        assert post.headers["X-Goog-Channel-ID"] == "chan-1"
        assert post.headers["X-Goog-Channel-Token"] == "secret-1"
        assert post.headers["X-Goog-Resource-ID"] == channel["resourceId"]
        assert post.headers["X-Goog-Resource-URI"] == channel["resourceUri"]
        assert post.headers["X-Goog-Channel-Expiration"].endswith("GMT")
        assert post.body == b""
    numbers = [int(p.headers["X-Goog-Message-Number"]) for p in posts]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 4


def test_channels_on_one_calendar_share_the_resource_id(
    account: Account, calendar_id: str, receiver: PushReceiver
) -> None:
    first = watch(account, calendar_id, receiver)
    second = watch(account, calendar_id, receiver, id="chan-2")
    assert first["resourceId"] == second["resourceId"]


def test_channel_ids_must_be_unique_while_live(
    account: Account, calendar_id: str, receiver: PushReceiver
) -> None:
    watch(account, calendar_id, receiver)
    call = account.service.events().watch(
        calendarId=calendar_id, body={"id": "chan-1", "type": "web_hook", "address": receiver.url}
    )
    assert google_error(call.execute)[0] == 400


def test_channel_ids_are_at_most_64_characters(
    account: Account, calendar_id: str, receiver: PushReceiver
) -> None:
    """Google's push guide: the channel id's "Maximum length: 64 characters" (JM3)."""
    assert watch(account, calendar_id, receiver, id="c" * 64)["id"] == "c" * 64
    call = account.service.events().watch(
        calendarId=calendar_id, body={"id": "d" * 65, "type": "web_hook", "address": receiver.url}
    )
    assert google_error(call.execute)[0] == 400


def test_stopped_channel_gets_nothing_more(
    control: EmulatorControl, account: Account, calendar_id: str, receiver: PushReceiver
) -> None:
    channel = watch(account, calendar_id, receiver)
    receiver.wait_for(1)
    channels = account.service.channels()
    wrong = channels.stop(body={"id": "chan-1", "resourceId": "not-it"})
    assert google_error(wrong.execute)[:2] == (404, "notFound")
    channels.stop(body={"id": "chan-1", "resourceId": channel["resourceId"]}).execute()

    account.service.events().insert(calendarId=calendar_id, body=timed("2026-11-21", 9)).execute()
    with_marker = watch(account, calendar_id, receiver, id="marker")
    account.service.events().insert(calendarId=calendar_id, body=timed("2026-11-22", 9)).execute()
    # One dispatcher delivers in order: a message for chan-1 would precede marker's.
    posts = receiver.wait_for(3)
    ids = [p.headers["X-Goog-Channel-ID"] for p in posts]
    assert ids == ["chan-1", "marker", "marker"]
    assert with_marker["id"] == "marker"


def test_channels_expire_by_the_emulator_clock_and_ttl_is_capped(
    control: EmulatorControl, account: Account, calendar_id: str, receiver: PushReceiver
) -> None:
    control.configure(max_channel_ttl_seconds=3600)
    short = watch(account, calendar_id, receiver, params={"ttl": "60"})
    long = watch(account, calendar_id, receiver, id="chan-long", params={"ttl": "999999"})
    now_ms = int(short["expiration"]) - 60_000
    assert int(long["expiration"]) - now_ms <= 3600 * 1000 + 1000
    # Both channels' "sync" messages must be out before the clock moves: the
    # dispatcher drops a message whose channel has expired by the time it sends it.
    receiver.wait_for(2)

    control.advance_clock(61)
    account.service.events().insert(calendarId=calendar_id, body=timed("2026-11-21", 9)).execute()
    posts = receiver.wait_for(3)
    assert [p.headers["X-Goog-Channel-ID"] for p in posts[2:]] == ["chan-long"]
    expired = [c for c in control.channels() if c["id"] == "chan-1"]
    assert expired[0]["expired"] is True


def test_calendar_list_watch_reports_new_calendars(
    account: Account, receiver: PushReceiver
) -> None:
    body = {"id": "list-1", "type": "web_hook", "address": receiver.url}
    channel = account.service.calendarList().watch(body=body).execute()
    account.service.calendars().insert(body={"summary": "Another"}).execute()
    posts = receiver.wait_for(2)
    assert [p.headers["X-Goog-Resource-State"] for p in posts] == ["sync", "exists"]
    assert posts[1].headers["X-Goog-Resource-ID"] == channel["resourceId"]


def test_deleting_a_watched_calendar_says_not_exists(
    account: Account, receiver: PushReceiver
) -> None:
    calendar = account.service.calendars().insert(body={"summary": "Temp"}).execute()
    watch(account, calendar["id"], receiver)
    account.service.calendars().delete(calendarId=calendar["id"]).execute()
    posts = receiver.wait_for(2)
    assert posts[-1].headers["X-Goog-Resource-State"] == "not_exists"


def test_a_blocked_receiver_never_blocks_requests(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    release = threading.Event()
    received: list[str] = []

    class Stuck(PushReceiver):
        pass

    with Stuck() as stuck:
        original = stuck._server.RequestHandlerClass.do_POST  # type: ignore[attr-defined]

        def slow_post(handler: object) -> None:
            release.wait(10)
            received.append("post")
            original(handler)

        stuck._server.RequestHandlerClass.do_POST = slow_post  # type: ignore[attr-defined]
        watch(account, calendar_id, stuck)
        # The dispatcher is now stuck on the sync message; requests still complete.
        for hour in range(8, 12):
            account.service.events().insert(
                calendarId=calendar_id, body=timed("2026-11-21", hour)
            ).execute()
        assert received == []
        release.set()
        assert len(stuck.wait_for(5)) == 5


def test_failed_deliveries_are_logged_not_retried(
    control: EmulatorControl,
    account: Account,
    calendar_id: str,
    new_receiver: Callable[..., PushReceiver],
) -> None:
    failing = new_receiver(status=500)
    watch(account, calendar_id, failing)
    account.service.events().insert(calendarId=calendar_id, body=timed("2026-11-21", 9)).execute()
    failing.wait_for(2)
    deliveries = wait_deliveries(control, 2)
    assert [(d["outcome"], d["status"]) for d in deliveries] == [("failed", 500)] * 2
    assert len(failing.received) == 2


def wait_deliveries(control: EmulatorControl, count: int) -> list[dict]:  # type: ignore[type-arg]
    """Bounded polling: delivery records land just after the receiver answered."""
    done = threading.Event()
    for _ in range(200):
        records = control.deliveries()
        if len(records) >= count:
            return records
        done.wait(0.01)
    return control.deliveries()


def test_drop_push_fault_loses_notifications(
    control: EmulatorControl, account: Account, calendar_id: str, receiver: PushReceiver
) -> None:
    watch(account, calendar_id, receiver)
    receiver.wait_for(1)
    control.add_fault(kind="drop_push", count=1)
    events = account.service.events()
    events.insert(calendarId=calendar_id, body=timed("2026-11-21", 9)).execute()
    events.insert(calendarId=calendar_id, body=timed("2026-11-21", 10)).execute()
    posts = receiver.wait_for(2)
    assert len(posts) == 2
    outcomes = [d["outcome"] for d in wait_deliveries(control, 3)]
    assert sorted(outcomes) == ["delivered", "delivered", "dropped"]
