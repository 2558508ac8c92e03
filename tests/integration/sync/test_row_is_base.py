"""A pulled row is its own base (decision IA1): it stores no copy of itself, and the
three-way merge still merges against the version both sides agreed on. Both databases,
two users whose calendars are worked on side by side: a pull merging a remote change into
a row edited once or twice since it was pulled, a local delete, and a row that still
stores its base as a document (data written before IA1, no backfill)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.domain.codec import event_to_document
from calsync.store.events import load_stored
from calsync.store.tables import Event as EventRow
from tests.integration.events.conftest import EventsApp, User
from tests.integration.sync.guarded import audit, logs, pull, seeded

pytestmark = pytest.mark.integration

USERS = ("alice@example.com", "bob@example.com")


def row_id(app: EventsApp, user: User, google_id: str) -> uuid.UUID:
    with app.services.sessions() as session:
        found = session.scalar(
            sa.select(EventRow.id).where(
                EventRow.calendar_id == user.calendar_id, EventRow.google_event_id == google_id
            )
        )
    assert found is not None
    return found


def stored_base(app: EventsApp, event_id: uuid.UUID) -> Any:
    """``events.base_version`` as stored (the empty document: the row is its own base)."""
    with app.services.sessions() as session:
        return session.scalar(sa.select(EventRow.base_version).where(EventRow.id == event_id))


def row(app: EventsApp, event_id: uuid.UUID) -> Any:
    with app.services.sessions() as session:
        stored = load_stored(session, event_id)
    assert stored is not None
    return stored


def google_ids(app: EventsApp, user: User) -> list[str]:
    with app.services.sessions() as session:
        return sorted(
            session.scalars(
                sa.select(EventRow.google_event_id).where(EventRow.calendar_id == user.calendar_id)
            )
        )


def patch_on_google(app: EventsApp, user: User, google_id: str, **fields: str) -> None:
    app.remote(user).patch(calendarId=user.primary, eventId=google_id, body=fields).execute()


def put(app: EventsApp, user: User, event_id: uuid.UUID, body: dict[str, Any]) -> None:
    answer = app.put(user, str(event_id), body)
    assert answer.status_code == 200, answer.text


def test_a_pulled_row_stores_no_copy_of_itself_and_its_base_is_the_row(
    app: EventsApp,
) -> None:

    for email in USERS:
        user = seeded(app, email, 3)
        for google_id in google_ids(app, user):
            event_id = row_id(app, user, google_id)
            # The row is its own base: nothing but the empty document is stored
            assert stored_base(app, event_id) == {}
            stored = row(app, event_id)
            assert stored.base_is_row
            assert stored.base == stored.event
            assert stored.event.provider_event_id == google_id


def test_a_pull_merges_a_remote_change_into_a_row_edited_once_or_twice_since_its_pull(
    app: EventsApp,
) -> None:

    users = [seeded(app, email, 3) for email in USERS]
    pulled: dict[str, dict[str, Any]] = {}
    for user in users:
        once, twice, untouched = google_ids(app, user)
        ids = {g: row_id(app, user, g) for g in (once, twice, untouched)}
        pulled[user.email] = {g: row(app, i).event for g, i in ids.items()}
        # Given one row edited once and another edited twice since it was pulled
        put(app, user, ids[once], {"title": f"{user.email}'s title"})
        put(app, user, ids[twice], {"title": f"{user.email}'s first title"})
        put(app, user, ids[twice], {"description": f"{user.email}'s description"})
        put(app, user, ids[twice], {"title": f"{user.email}'s second title"})
        # Then each stores the version before its first edit, as the base
        for google_id in (once, twice):
            base = stored_base(app, ids[google_id])
            assert base["title"] == pulled[user.email][google_id].title
            assert base["description"] == pulled[user.email][google_id].description
            assert row(app, ids[google_id]).base == pulled[user.email][google_id]
        assert stored_base(app, ids[untouched]) == {}
        # And another client changes another field of each on Google
        for google_id in (once, twice, untouched):
            patch_on_google(app, user, google_id, location=f"{user.email} on Google")

    # When the calendars are pulled
    for user in users:
        pull(app, user)

    # Then each edited row keeps its edits and takes Google's change (the base was the
    # pulled version: against the edited one, Google's old title would look like a change)
    for user in users:
        once, twice, untouched = google_ids(app, user)
        ids = {g: row_id(app, user, g) for g in (once, twice, untouched)}
        edited_once, edited_twice = row(app, ids[once]), row(app, ids[twice])
        assert edited_once.event.title == f"{user.email}'s title"
        assert edited_once.event.location == f"{user.email} on Google"
        assert edited_once.event.description == pulled[user.email][once].description
        assert edited_twice.event.title == f"{user.email}'s second title"
        assert edited_twice.event.description == f"{user.email}'s description"
        assert edited_twice.event.location == f"{user.email} on Google"
        assert {edited_once.sync_state, edited_twice.sync_state} == {"pending"}
        # the merge's base is Google's version now, stored (the row differs from it)
        assert stored_base(app, ids[once])["location"] == f"{user.email} on Google"
        assert stored_base(app, ids[once])["title"] == pulled[user.email][once].title
        # and the untouched row took Google's version and is its own base again
        assert row(app, ids[untouched]).event.location == f"{user.email} on Google"
        assert stored_base(app, ids[untouched]) == {}
        conflicts = logs(app, user, kind="conflict")
        assert len(conflicts) == 2
        assert {(entry["status"], entry["conflicts"]) for entry in conflicts} == {("resolved", 0)}

    # And the push gives Google both sides' changes, for each user
    app.push_all()
    for user in users:
        once, twice, _ = google_ids(app, user)
        on_google = app.google_event(user, twice)
        assert on_google["summary"] == f"{user.email}'s second title"
        assert on_google["description"] == f"{user.email}'s description"
        assert on_google["location"] == f"{user.email} on Google"
        assert app.google_event(user, once)["summary"] == f"{user.email}'s title"
        assert row(app, row_id(app, user, twice)).sync_state == "synced"


def test_a_local_delete_keeps_the_pulled_base_and_wins_on_google(app: EventsApp) -> None:

    users = [seeded(app, email, 2) for email in USERS]
    for user in users:
        doomed, kept = google_ids(app, user)
        event_id = row_id(app, user, doomed)
        before = row(app, event_id).event
        # Given a pulled row deleted locally, and changed on Google meanwhile
        answer = app.client.delete(f"/events/{event_id}", headers=user.headers)
        assert answer.status_code == 204, answer.text
        patch_on_google(app, user, doomed, summary="renamed on Google")
        # Then its base is still the pulled version (a delete changes no column of it)
        assert stored_base(app, event_id) == {}
        deleted = row(app, event_id)
        assert deleted.deleted_at is not None
        assert deleted.base == before

    # When the calendars are pulled, the delete is left to the push
    for user in users:
        pull(app, user)
        doomed, kept = google_ids(app, user)
        assert row(app, row_id(app, user, doomed)).deleted_at is not None
        assert row(app, row_id(app, user, doomed)).event.title != "renamed on Google"
    app.push_all()

    # And the local delete wins on Google; the other event is untouched
    for user in users:
        doomed, kept = google_ids(app, user)
        assert app.google_event(user, doomed)["status"] == "cancelled"
        assert app.google_event(user, kept)["status"] == "confirmed"
        assert stored_base(app, row_id(app, user, kept)) == {}


def test_a_row_that_stores_its_base_as_a_document_keeps_working(app: EventsApp) -> None:

    users = [seeded(app, email, 3) for email in USERS]
    documents: dict[uuid.UUID, dict[str, Any]] = {}
    for user in users:
        # Given rows stored before IA1: their base a document of the pulled version
        with app.services.sessions.begin() as session:
            for google_id in google_ids(app, user):
                event_id = row_id(app, user, google_id)
                stored = load_stored(session, event_id)
                assert stored is not None
                document = event_to_document(stored.event)
                document["calsync_id"] = None  # as Google's copy carried it
                documents[event_id] = document
                session.execute(
                    sa.update(EventRow).where(EventRow.id == event_id).values(base_version=document)
                )
        edited, audited, _ = google_ids(app, user)
        # And one of them edited locally: the edit keeps the stored document as it is
        put(app, user, row_id(app, user, edited), {"title": f"{user.email}'s title"})
        assert stored_base(app, row_id(app, user, edited)) == documents[row_id(app, user, edited)]
        assert not row(app, row_id(app, user, edited)).base_is_row
        patch_on_google(app, user, edited, location=f"{user.email} on Google")

    # When the calendars are pulled and audited
    for user in users:
        pull(app, user)
        app.clock.advance(seconds=1)
        audit(app, user)

    for user in users:
        edited, audited, _ = google_ids(app, user)
        # Then the edit and Google's change are merged against the stored base
        merged = row(app, row_id(app, user, edited)).event
        assert (merged.title, merged.location) == (
            f"{user.email}'s title",
            f"{user.email} on Google",
        )
        # And the audit found nothing drifted in the rows that kept their document
        [entry] = logs(app, user, kind="audit")
        assert entry["details"]["drifted"] == 0
        assert entry["details"]["repaired"] == 0
        assert stored_base(app, row_id(app, user, audited)) == documents[row_id(app, user, audited)]
