"""Property: a client that full-syncs once and then follows sync tokens, paging with any
page size, always ends up with exactly the events a fresh full listing shows.

Runs the emulator's service layer in-process (no HTTP): ``listing`` and
``event_service`` over an ``EmulatorState``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.emulator import errors, event_service, listing
from calsync.emulator.event_service import EventScope
from calsync.emulator.state import EmulatorState

IDS = [f"evt{n:04d}" for n in range(8)]
OPS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "patch", "delete", "sync"]),
        st.sampled_from(IDS),
        st.integers(min_value=1, max_value=4),
    ),
    max_size=40,
)


def scope(state: EmulatorState) -> EventScope:
    calendar, role = state.visible_calendar("a@example.com", "primary")
    return EventScope(calendar, role, "a@example.com", state.clock.now())


def pages(state: EmulatorState, params: dict[str, str], page_size: int) -> tuple[list[Any], str]:
    items: list[Any] = []
    query = dict(params, maxResults=str(page_size))
    while True:
        body = listing.list_events(
            scope(state),
            listing.Query(lambda k, q=query: [q[k]] if k in q else []),
            sync_token_ttl=None,
        )
        items.extend(body["items"])
        if "nextPageToken" not in body:
            return items, str(body["nextSyncToken"])
        query = dict(query, pageToken=body["nextPageToken"])


def apply(replica: dict[str, str], items: list[Any]) -> None:
    for item in items:
        if item["status"] == "cancelled":
            replica.pop(item["id"], None)
        else:
            replica[item["id"]] = item["etag"]


@settings(max_examples=60, deadline=None)
@given(ops=OPS, page_size=st.integers(min_value=1, max_value=5))
def test_incremental_sync_converges_to_the_full_listing(
    ops: list[tuple[str, str, int]], page_size: int
) -> None:
    state = EmulatorState()
    state.create_user("a@example.com")
    replica: dict[str, str] = {}
    items, token = pages(state, {"showDeleted": "true"}, page_size)
    apply(replica, items)
    for op, event_id, hour in ops:
        body = {
            "id": event_id,
            "summary": f"{op}-{hour}",
            "start": {"dateTime": f"2026-11-21T0{hour}:00:00Z"},
            "end": {"dateTime": f"2026-11-21T0{hour + 1}:00:00Z"},
        }
        try:
            if op == "insert":
                event_service.insert_event(scope(state), body)
            elif op == "patch":
                event_service.update_event(
                    scope(state), event_id, {"summary": f"p{hour}"}, if_match=None, patch=True
                )
            elif op == "delete":
                event_service.delete_event(scope(state), event_id, if_match=None)
            else:
                items, token = pages(state, {"showDeleted": "true", "syncToken": token}, page_size)
                apply(replica, items)
        except errors.GoogleApiError as err:
            if err.status not in (404, 409, 410):  # missing, duplicate, already deleted
                raise
    items, token = pages(state, {"showDeleted": "true", "syncToken": token}, page_size)
    apply(replica, items)

    fresh, _ = pages(state, {}, page_size)
    assert replica == {item["id"]: item["etag"] for item in fresh}
