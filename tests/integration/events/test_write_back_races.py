"""An API edit that commits while a push of the same event runs is pushed too.

A push reads the event and its pending outbox rows in separate statements (there is no
common snapshot under PostgreSQL's READ COMMITTED, nor between SQLite's autocommitted
reads). An edit committed between the two reads used to be closed with the rows of the
version that was pushed, although Google never got it: the event stayed ``pending`` for
good with nothing left to push it. With a this-and-following split, Google kept the old
series' ``COUNT`` next to the new series: duplicate instances on Google.

The edit is placed deterministically: `EditDuringPush` wraps the two reads the push makes
and commits the edit (through the HTTP API) right after whichever of them runs first, or
just before the write goes to Google. Nothing here depends on timing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.providers.base import CalendarProvider, ProviderSource
from calsync.store import event_changes, outbox
from calsync.store.tables import OutboxEntry
from calsync.sync import write_back
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

Edit = Callable[[], None]


class EditDuringPush:
    """Commits an edit at a chosen point of the push of one event, once.

    `after_first_read`: right after the push's first read of the event or of its outbox
    rows returns, before the other one (the race of the issue). `before_write`: after both
    reads, just before the write is sent to Google.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, app: EventsApp) -> None:
        self.after_first_read: dict[uuid.UUID, Edit] = {}
        self.before_write: dict[uuid.UUID, Edit] = {}
        for owner, name in ((write_back, "read_stored"), (outbox, "pending_writes")):
            monkeypatch.setattr(owner, name, self._read_hook(getattr(owner, name)))
        app.services.providers = _HookedProviders(app.services.providers, self)

    def _read_hook(self, read: Callable[..., Any]) -> Callable[..., Any]:
        def hooked(session: Any, event_id: uuid.UUID) -> Any:
            found = read(session, event_id)
            edit = self.after_first_read.pop(event_id, None)
            if edit is not None:
                edit()
            return found

        return hooked

    def sending(self, calsync_id: str) -> None:
        edit = self.before_write.pop(uuid.UUID(calsync_id), None)
        if edit is not None:
            edit()

    @property
    def all_done(self) -> bool:
        return not self.after_first_read and not self.before_write


class _Hooked:
    """A Google client that lets `EditDuringPush` act just before an insert or a patch."""

    def __init__(self, inner: CalendarProvider, hook: EditDuringPush) -> None:
        self._inner = inner
        self._hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def insert_event(self, *args: Any, **kwargs: Any) -> Any:
        self._hook.sending(kwargs["calsync_id"])
        return self._inner.insert_event(*args, **kwargs)

    def patch_event(self, *args: Any, **kwargs: Any) -> Any:
        self._hook.sending(kwargs["calsync_id"])
        return self._inner.patch_event(*args, **kwargs)


class _HookedProviders:
    def __init__(self, inner: ProviderSource, hook: EditDuringPush) -> None:
        self.inner = inner
        self.hook = hook

    def for_user(self, user_id: uuid.UUID) -> Any:
        return _Hooked(self.inner.for_user(user_id), self.hook)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def edits(monkeypatch: pytest.MonkeyPatch, any_app: EventsApp) -> EditDuringPush:
    return EditDuringPush(monkeypatch, any_app)


def _single(title: str) -> dict[str, Any]:
    return {
        "title": title,
        "start_time": "2031-03-04T10:00:00Z",
        "end_time": "2031-03-04T11:00:00Z",
    }


def _retitle(app: EventsApp, user: User, event_id: str, title: str, **params: str) -> Edit:
    def edit() -> None:
        response = app.put(user, event_id, {"title": title}, **params)
        assert response.status_code == 200, response.text

    return edit


def _outbox_statuses(app: EventsApp, event_id: str) -> list[str]:
    with app.services.sessions() as session:
        return list(
            session.scalars(
                sa.select(OutboxEntry.status)
                .where(OutboxEntry.event_id == uuid.UUID(event_id))
                .order_by(OutboxEntry.id)
            )
        )


def _google_items(app: EventsApp, user: User, **params: Any) -> list[dict[str, Any]]:
    listed = app.remote(user).list(calendarId=user.primary, **params).execute()
    items: list[dict[str, Any]] = listed["items"]
    return items


def _assert_converged(app: EventsApp, user: User, event: dict[str, Any], title: str) -> None:
    """The event's newest version is on Google, the event synced, no outbox row pending."""
    shown = app.get(user, event["id"])
    assert (shown["title"], shown["sync_state"]) == (title, "synced"), shown
    assert "pending" not in _outbox_statuses(app, event["id"])
    assert app.google_event(user, event["google_event_id"])["summary"] == title


@pytest.mark.parametrize("point", ["after_first_read", "before_write"])
def test_an_edit_committed_during_a_push_reaches_google(
    any_app: EventsApp, edits: EditDuringPush, point: str
) -> None:
    app = any_app
    users = [app.connect(f"{name}@example.com") for name in ("alice", "bob", "carol")]
    # Given each user's event, on Google, then edited locally (a push is due)
    events = [app.create(user, _single(f"{user.email} v1")) for user in users]
    app.push_all()
    for user, event in zip(users, events, strict=True):
        assert app.put(user, event["id"], {"title": f"{user.email} v2"}).status_code == 200
        # And another edit of it that commits while the push of v2 runs
        getattr(edits, point)[uuid.UUID(event["id"])] = _retitle(
            app, user, event["id"], f"{user.email} v3"
        )
    # When the pushes run
    app.push_all()
    # Then every newest version is on Google, once, and nothing is left pending
    assert edits.all_done, "every edit landed during its push"
    for user, event in zip(users, events, strict=True):
        _assert_converged(app, user, event, f"{user.email} v3")
        assert [e["id"] for e in _google_items(app, user)] == [event["google_event_id"]]
    assert app.push_all() == []


def test_a_new_event_edited_between_the_reads_of_its_insert(
    any_app: EventsApp, edits: EditDuringPush
) -> None:
    app = any_app
    alice, bob = app.connect("alice@example.com"), app.connect("bob@example.com")
    # Given events never pushed, each edited between the reads of the push that inserts it
    events = {user.email: app.create(user, _single(f"{user.email} v1")) for user in (alice, bob)}
    for user in (alice, bob):
        event = events[user.email]
        edits.after_first_read[uuid.UUID(event["id"])] = _retitle(
            app, user, event["id"], f"{user.email} v2"
        )
    # When the pushes run
    app.push_all()
    # Then Google holds each event once, in its newest version (inserted, then patched)
    assert edits.all_done
    for user in (alice, bob):
        event = events[user.email]
        _assert_converged(app, user, event, f"{user.email} v2")
        assert [e["id"] for e in _google_items(app, user)] == [event["google_event_id"]]
        assert len(app.google_requests("POST", f"/calendars/{user.email}/events")) == 1


def test_a_write_refused_for_good_does_not_fail_an_edit_it_did_not_carry(
    any_app: EventsApp, edits: EditDuringPush
) -> None:
    app = any_app
    alice, bob = app.connect("alice@example.com"), app.connect("bob@example.com")
    events = {user.email: app.create(user, _single(f"{user.email} v1")) for user in (alice, bob)}
    app.push_all()
    # Given alice's edit, whose write Google refuses (400: never retried) ...
    event = events[alice.email]
    assert app.put(alice, event["id"], {"title": "refused"}).status_code == 200
    app.control.add_fault(kind="status", status=400, method="PATCH", user=alice.email, count=1)
    # ... and a newer edit that commits while that write is on its way
    edits.before_write[uuid.UUID(event["id"])] = _retitle(app, alice, event["id"], "newer")
    # And bob's event, edited meanwhile
    assert app.put(bob, events[bob.email]["id"], {"title": "bob v2"}).status_code == 200
    # When alice's event is pushed (once), then everything due
    result = app.push(event["id"])
    app.push_all()
    # Then the refusal concerned the older version only: the push went on with the newer
    # one, which is on Google; no row failed, and the event never showed an error
    assert edits.all_done
    assert result.status == write_back.PushStatus.SYNCED, result
    _assert_converged(app, alice, event, "newer")
    assert _outbox_statuses(app, event["id"]) == ["done"] * 3
    assert len(app.google_requests("PATCH", event["google_event_id"])) == 2
    _assert_converged(app, bob, events[bob.email], "bob v2")


WEEKLY = {
    "title": "Standup",
    "start_time": "2031-03-03T09:00:00",
    "end_time": "2031-03-03T09:15:00",
    "timezone": "Europe/Berlin",
    "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6"],
}


def _instances(app: EventsApp, user: User) -> list[dict[str, Any]]:
    query = {"start_date": "2031-03-01", "end_date": "2031-04-30", "expand": "true"}
    response = app.client.get("/events", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def test_a_split_committed_during_a_push_of_its_series_cuts_the_series_on_google(
    any_app: EventsApp, edits: EditDuringPush
) -> None:
    app = any_app
    alice, bob = app.connect("alice@example.com"), app.connect("bob@example.com")
    series = {user.email: app.create(user, WEEKLY) for user in (alice, bob)}
    app.push_all()
    for user in (alice, bob):
        old = series[user.email]
        # Given a series on Google, renamed locally (its push is due)
        renamed = app.put(user, old["id"], {"title": "Daily"})
        assert renamed.status_code == 200, renamed.text
        # And a this-and-following split from its fourth instance that commits between the
        # reads of the push of the rename
        fourth = _instances(app, user)[3]["id"]
        edits.after_first_read[uuid.UUID(old["id"])] = _retitle(
            app, user, fourth, "Standup v2", scope="following"
        )
    # When the pushes run
    app.push_all()
    # Then the old series ends before the split on Google, next to the new one: six
    # instances, none twice
    assert edits.all_done
    for user in (alice, bob):
        old = series[user.email]
        shown = app.get(user, old["id"])
        assert shown["sync_state"] == "synced", shown
        assert "pending" not in _outbox_statuses(app, old["id"])
        remote = app.google_event(user, old["google_event_id"])
        assert remote["recurrence"] == ["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20310324T075959Z"]
        assert remote["summary"] == "Daily"
        listed = _google_items(app, user, singleEvents=True, orderBy="startTime")
        starts = [e["start"]["dateTime"] for e in listed]
        assert len(starts) == len(set(starts)) == 6, starts
        assert [e["summary"] for e in listed] == ["Daily"] * 3 + ["Standup v2"] * 3
        assert [(i["title"], i["sync_state"]) for i in _instances(app, user)] == [
            ("Daily", "synced")
        ] * 3 + [("Standup v2", "synced")] * 3
    assert app.push_all() == []


def test_an_edit_sent_while_a_412_is_merged_waits_for_the_merge_and_is_kept(
    any_app: EventsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge reads the event locked (PostgreSQL ``FOR UPDATE``; on SQLite the same
    read makes its transaction the one writer, decision F5): an edit sent once the merge
    has read the event waits for the merge's commit, then is stored on top of it and
    pushed. Before F5, on SQLite, such an edit committed between the merge's read and
    its write; only the merge's version check kept it then."""
    app = any_app
    alice, bob = app.connect("alice@example.com"), app.connect("bob@example.com")
    events = {user.email: app.create(user, _single(f"{user.email} v1")) for user in (alice, bob)}
    app.push_all()
    event = events[alice.email]
    # Given a change on Google and a local one of another field: the push will get 412
    app.remote(alice).patch(
        calendarId=alice.primary,
        eventId=event["google_event_id"],
        body={"description": "from Google"},
    ).execute()
    assert app.put(alice, event["id"], {"location": "Room 1"}).status_code == 200
    # And a newer edit sent from another client once the merge has read the event
    hooks = EditDuringPush(monkeypatch, app)
    in_merge: dict[uuid.UUID, Edit] = {}
    sent: list[Future[None]] = []
    pool = ThreadPoolExecutor(1)
    read = event_changes.load_stored

    def merge_reads(session: Any, event_id: uuid.UUID) -> Any:
        found = read(session, event_id)
        edit = in_merge.pop(event_id, None)
        if edit is not None:
            sent.append(pool.submit(edit))
            time.sleep(0.3)  # the edit reaches its write and waits for the merge
            assert not sent[0].done(), "the edit did not wait for the merge"
        return found

    monkeypatch.setattr(event_changes, "load_stored", merge_reads)
    newer = _retitle(app, alice, event["id"], "newer")
    hooks.before_write[uuid.UUID(event["id"])] = lambda: in_merge.update(
        {uuid.UUID(event["id"]): newer}
    )
    assert app.put(bob, events[bob.email]["id"], {"title": "bob v2"}).status_code == 200
    # When the pushes run, the edit ends, and the pushes run again
    app.push_all()
    assert hooks.all_done
    assert sent, "the edit was sent during the merge"
    sent[0].result(timeout=30)
    pool.shutdown()
    app.push_all()
    # Then the newer edit is kept, and Google holds all three changes
    _assert_converged(app, alice, event, "newer")
    shown = app.get(alice, event["id"])
    remote = app.google_event(alice, event["google_event_id"])
    assert (shown["location"], shown["description"]) == ("Room 1", "from Google")
    assert (remote["location"], remote["description"]) == ("Room 1", "from Google")
    _assert_converged(app, bob, events[bob.email], "bob v2")
