"""An API edit committed while a pull reconciles the same event is never lost: the pull
takes the rows it reconciles (PostgreSQL: ``FOR NO KEY UPDATE``; SQLite: the pull's
transaction writes first, and SQLite has one writer), so the edit waits for the pull
and then applies on top of Google's change. Both databases, two users.

The edit is sent at an exact point - after the pull read the row, before it writes it -
from another thread, by a hook on the pull's per-row step.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from calsync.sync import reconcile
from calsync.web.app import create_app
from tests.integration.events.conftest import EventsApp
from tests.integration.sync.conftest import wait_until

pytestmark = pytest.mark.integration

BODY = {
    "title": "quarterly review",
    "start_time": "2031-03-12T09:00:00Z",
    "end_time": "2031-03-12T10:00:00Z",
    "timezone": "UTC",
}


def blocked_on_a_lock(app: EventsApp) -> bool:
    """Whether another PostgreSQL session waits for a row lock now."""
    with app.services.engine.connect() as connection:
        waiting = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()
    return bool(waiting)


@pytest.fixture
def edit_during_reconcile(any_app: EventsApp, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Arm with ``armed["edit"] = (user, event_id, body)``: the next row the pull
    reconciles sends that PUT from another thread, and the pull goes on once the PUT
    is either done (nothing held it) or held by a lock."""
    armed: dict[str, Any] = {}
    original = reconcile._overwrite_values

    def hooked(row: Any, remote: Any) -> dict[str, Any]:
        if "edit" in armed:
            user, event_id, body = armed.pop("edit")

            def put() -> None:
                with TestClient(create_app(any_app.services)) as client:
                    armed["answer"] = client.put(
                        f"/events/{event_id}", json=body, headers=user.headers
                    )

            thread = threading.Thread(target=put)
            thread.start()
            armed["thread"] = thread
            if any_app.services.engine.dialect.name == "postgresql":
                wait_until(
                    lambda: not thread.is_alive() or blocked_on_a_lock(any_app),
                    what="the edit to finish or wait for the pull's lock",
                )
            else:  # one writer: the edit waits for the pull's transaction, or is done
                thread.join(timeout=1.0)
        return original(row, remote)

    monkeypatch.setattr(reconcile, "_overwrite_values", hooked)
    return armed


def test_an_api_edit_during_a_pull_of_the_same_event_survives(
    any_app: EventsApp, edit_during_reconcile: dict[str, Any]
) -> None:
    # Given ann's event on Google, and ben's own event beside it
    ann = any_app.connect("ann@example.com")
    ben = any_app.connect("ben@example.com")
    created = any_app.create(ann, BODY)
    bens = any_app.create(ben, BODY | {"title": "ben's review"})
    any_app.push_all()
    google_id = any_app.get(ann, created["id"])["google_event_id"]
    # When another client renames it on Google, and ann edits its description through
    # the API while the pull of that rename is reconciling the row
    any_app.remote(ann).patch(
        calendarId=ann.primary, eventId=google_id, body={"summary": "renamed on Google"}
    ).execute()
    edit_during_reconcile["edit"] = (ann, created["id"], {"description": "agenda attached"})
    any_app.pull(ann)
    edit_during_reconcile["thread"].join(timeout=30)
    assert edit_during_reconcile["answer"].status_code == 200, edit_during_reconcile["answer"].text
    any_app.push_all()
    # Then both changes hold, locally and on Google, and the event is synced
    local = any_app.get(ann, created["id"])
    assert (local["title"], local["description"]) == ("renamed on Google", "agenda attached")
    assert local["sync_state"] == "synced"
    remote = any_app.google_event(ann, google_id)
    assert (remote["summary"], remote.get("description")) == (
        "renamed on Google",
        "agenda attached",
    )
    # And ben's event was never touched
    assert any_app.get(ben, bens["id"])["title"] == "ben's review"
