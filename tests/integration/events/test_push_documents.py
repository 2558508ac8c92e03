"""A push's success keeps the read model itself when it pushed a live single: its
document is replaced in the success's transaction, and no run is needed after it
(decision IG2). Both databases, three users.

The success changes the row's sync state, Google's id and organizer, which only the
single's document shows (its listed item - times, status, version - is unchanged).
Before, the success left records for the ``refresh_read_model`` job, and the user's
lists were expanded per request until it ran.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from calsync.domain.models import SYNCABLE_FIELDS
from calsync.store.events import load_stored
from calsync.sync.write_back import PushStatus
from tests.integration.events.conftest import EventsApp, User
from tests.integration.events.test_push_records import records_read, single, statements
from tests.integration.events.test_read_model import Spy
from tests.integration.events.test_read_model_upkeep import (
    expanded,
    filled,
    listing,
    pending,
    spy,
)

pytestmark = pytest.mark.integration

__all__ = ["filled", "spy"]  # fixtures, used by name


def shown(app: EventsApp, user: User, spy: Spy, title: str) -> tuple[dict[str, Any], bool]:
    pages, answered = listing(app, user, spy)
    found = [e for events, _ in pages for e in events if e["title"] == title]
    assert len(found) == 1, found
    return found[0], answered


def on_google(app: EventsApp, user: User, title: str) -> list[dict[str, Any]]:
    items = app.remote(user).list(calendarId=user.primary, q=title).execute()["items"]
    return [e for e in items if e["summary"] == title]


def test_a_pushed_single_is_listed_from_the_model_at_once(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, people = filled
    made = {user.id: app.create(user, single(f"at once {user.email}", 4)) for user in people}
    assert pending(app) == 0
    for user in people:
        with statements(app) as sent:
            result = app.push(made[user.id]["id"])
        assert result.status is PushStatus.SYNCED
        assert records_read(sent) == 1
    # Then no change is left for a run: each user's list comes from the model at once,
    # shows the event synced under Google's id, and equals the expansion
    assert pending(app) == 0
    for user in people:
        title = f"at once {user.email}"
        item, answered = shown(app, user, spy, title)
        assert answered
        assert item["sync_state"] == "synced"
        (google,) = on_google(app, user, title)
        assert item["google_event_id"] == google["id"]
        pages, _ = listing(app, user, spy)
        assert pages == expanded(app, user)
        # And the pushed version is the stored base: the row as it now reads
        with app.services.sessions() as session:
            stored = load_stored(session, uuid.UUID(made[user.id]["id"]))
        assert stored is not None
        assert not stored.base_is_row
        assert stored.base is not None
        assert {f: getattr(stored.base, f) for f in SYNCABLE_FIELDS} == {
            f: getattr(stored.event, f) for f in SYNCABLE_FIELDS
        }
        assert stored.event.etag == google["etag"]
    # And a run after it finds nothing and changes nothing
    before = {user.id: listing(app, user, spy)[0] for user in people}
    app.upkeep()
    assert {user.id: listing(app, user, spy)[0] for user in people} == before


def test_an_edit_after_the_push_merges_from_the_pushed_version(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, (alice, bob, _carol) = filled
    for user in (alice, bob):
        title = f"merged {user.email}"
        made = app.create(user, single(title, 6))
        assert app.push(made["id"]).status is PushStatus.SYNCED
        # Another client changes the location on Google; calsync's user the title
        (google,) = on_google(app, user, title)
        app.remote(user).patch(
            calendarId=user.primary, eventId=google["id"], body={"location": "Room 7"}
        ).execute()
        answer = app.put(user, made["id"], {"title": f"{title} renamed"})
        assert answer.status_code == 200, answer.text
        # Then the push meets Google's newer copy (412), merges it against the pushed
        # version (the base the success stored), and both changes survive
        assert app.push(made["id"]).status is PushStatus.SYNCED
        (after,) = on_google(app, user, f"{title} renamed")
        assert after["location"] == "Room 7"
        app.upkeep()
        item, answered = shown(app, user, spy, f"{title} renamed")
        assert answered
        assert item["location"] == "Room 7"
        assert item["sync_state"] == "synced"
        assert listing(app, user, spy)[0] == expanded(app, user)


def test_a_push_after_a_pull_that_moved_the_single_lists_it_where_it_moved(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    """Review RY2: a pull merged another client's move of a single with a local edit
    (a new version to push, its records left for a run); the push of that version then
    succeeds before the run. The success must not take the pull's records as if they
    only changed the document: the single's listed item moved too. On SQLite, where a
    transaction cannot tell its records from others', they were removed with the
    document alone replaced, and the model listed the event at its old time."""
    app, people = filled
    for n, user in enumerate(people[:2]):
        title = f"moved away {user.email}"
        made = app.create(user, single(title, 4 + n))
        assert app.push(made["id"]).status is PushStatus.SYNCED
        app.upkeep()
        # calsync's user renames it; another client moves it 50 days later on Google
        answer = app.put(user, made["id"], {"title": f"{title} renamed"})
        assert answer.status_code == 200, answer.text
        (google,) = on_google(app, user, title)
        later = {
            key: {**google[key], "dateTime": _shifted(google[key]["dateTime"], days=50)}
            for key in ("start", "end")
        }
        app.remote(user).patch(calendarId=user.primary, eventId=google["id"], body=later).execute()
        app.clock.advance(minutes=1)
        app.pull(user)  # merges both: a new version to push; its records wait for a run
        assert pending(app) > 0
        assert app.push(made["id"]).status is PushStatus.SYNCED
        # Then, before any run, and after one, the list shows it where it now is: not in
        # this window
        pages, _ = listing(app, user, spy)
        assert f"{title} renamed" not in {e["title"] for events, _ in pages for e in events}
        assert pages == expanded(app, user)
        app.upkeep()
        assert listing(app, user, spy)[0] == expanded(app, user)


def _shifted(moment: str, *, days: int) -> str:
    return (datetime.fromisoformat(moment) + timedelta(days=days)).isoformat()
