"""The JSON of a read-model page: each item's bytes, from the documents stored with it.

`bodies` turns the rows `calsync.events.read_model.page` listed into the bytes of each
item, as `event_json` of the item's view rendered by `json_bytes` would give them (the
differential test, tests/integration/events/test_read_model.py, compares them byte for
byte with today's expansion):

- a single's and an exception's document are its stored JSON, as it is;
- a generated instance's is its master's stored template with the five fields an
  instance has of its own (id, original start, start, end, Google id) put in between
  its bytes (`calsync.events.templates`), without parsing or rendering the rest per
  item (decision A2);
- the few rows without a usable document (a master without rules, an instance whose
  bookkeeping another exception carries) are loaded and rendered (`model_view`), in the
  page's snapshot.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy.orm import Session

from calsync.domain.recurrence import instance_of
from calsync.domain.timezones import zone
from calsync.events.read_model import ListedRow, original_start, series_id_of
from calsync.events.templates import instance_body_encoded
from calsync.events.views import EventView, event_json, instance_json, json_bytes
from calsync.store.event_queries import load_shown
from calsync.store.events import StoredEvent

__all__ = ["bodies", "load_rows", "model_view", "stored_bodies", "stored_body"]

_UUID_LENGTH: Final = 36
"""The length of a local id as text: an instance's API id is it and the suffix."""


def bodies(session: Session, rows: list[ListedRow]) -> list[bytes]:
    """The JSON of model rows, in their order: from their stored documents
    (`stored_body`); the few without one usable loaded and rendered, the generated
    instances of one master from the first one's document (`instance_json`). An item
    whose row went since it was listed (deleted by a concurrent request) is left out."""
    zones: dict[str, ZoneInfo] = {}
    found = [stored_body(row, zones) for row in rows]
    rest = [row for row, body in zip(rows, found, strict=True) if body is None]
    if not rest:
        return [body for body in found if body is not None]
    loaded = load_rows(session, rest)
    rendered: dict[tuple[uuid.UUID, str], bytes | None] = {}
    made: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rest:
        rendered[(row.owner_id, row.api_id)] = _rendered(row, loaded, made)
    answer = [
        body if body is not None else rendered[(row.owner_id, row.api_id)]
        for row, body in zip(rows, found, strict=True)
    ]
    return [body for body in answer if body is not None]


def stored_bodies(rows: list[ListedRow]) -> list[bytes] | None:
    """The JSON of model rows, in their order, from their stored documents alone
    (`stored_body`); `None` when one of them has no usable document (then `bodies`
    loads and renders it, in the snapshot the rows were listed in)."""
    zones: dict[str, ZoneInfo] = {}
    found = []
    for row in rows:
        body = stored_body(row, zones)
        if body is None:
            return None
        found.append(body)
    return found


def _rendered(
    row: ListedRow, loaded: Mapping[uuid.UUID, StoredEvent], made: dict[uuid.UUID, dict[str, Any]]
) -> bytes | None:
    found = model_view(row, loaded)
    if found is None:
        return None
    view, generated = found
    template = made.get(view.stored.id) if generated else None
    if template is not None:
        return json_bytes(instance_json(template, view))
    document = event_json(view)
    if generated:
        made[view.stored.id] = document
    return json_bytes(document)


def stored_body(row: ListedRow, zones: dict[str, ZoneInfo]) -> bytes | None:
    """A model row's JSON from the documents the upkeep stored with it (in the page's
    snapshot): a single's or an exception's as it is; a generated instance's from its
    master's template (`calsync.events.templates`), the instance's fields computed from
    the row as `instance_of` makes them. `None` where no document applies: the caller
    renders those. `zones`: the zones the page looked up so far."""
    if not row.in_series:
        return row.owner_body
    if row.exception_id is not None:
        return row.exception_body if row.bookkeeping_id == row.exception_id else None
    if row.bookkeeping_id is not None or row.owner_body is None or row.series_id is None:
        return None
    if row.original_at is None:
        return None
    if row.original_zone is None:  # a day: stored at midnight UTC, as the end
        start = orjson.dumps(row.original_at.astimezone(UTC).date().isoformat())
        end = orjson.dumps(row.end_at.astimezone(UTC).date().isoformat())
    elif row.end_zone is None:
        return None
    else:
        start = _instant_json(row.original_at, _zone(row.original_zone, zones))
        end = _instant_json(row.end_at, _zone(row.end_zone, zones))
    suffix = row.api_id[_UUID_LENGTH:]  # "_" and the original start, as `instance_id`
    encoded = (orjson.dumps(row.api_id), start, start, end, orjson.dumps(row.series_id + suffix))
    return instance_body_encoded(row.owner_body, encoded)


def _instant_json(at: datetime, in_zone: ZoneInfo) -> bytes:
    """The JSON of ``at.astimezone(in_zone).isoformat()``, as `instance_json` writes an
    instance's start and end. orjson renders the local time itself, with the same
    digits, microseconds and offset, several times cheaper than ``isoformat`` and then
    its string (decision IQ2), except for an offset that is not a whole number of
    minutes (a zone's local mean time before its first standard time, such as
    ``-00:16:08``): orjson writes hours and minutes only, ``isoformat`` the seconds too;
    those take ``isoformat``."""
    local = at.astimezone(in_zone)
    offset = local.utcoffset()
    if offset is None or offset.seconds % 60 or offset.microseconds:
        return orjson.dumps(local.isoformat())
    return orjson.dumps(local)


def _zone(name: str, zones: dict[str, ZoneInfo]) -> ZoneInfo:
    """`zone(name)`, looked up once per page (the check of the name costs more than the
    conversion it is for)."""
    found = zones.get(name)
    if found is None:
        found = zones[name] = zone(name)
    return found


def load_rows(session: Session, rows: list[ListedRow]) -> dict[uuid.UUID, StoredEvent]:
    """The events model rows show (owners, exceptions, bookkeeping), read in one query."""
    wanted: list[uuid.UUID] = []
    for row in rows:
        wanted.append(row.owner_id)
        if row.exception_id is not None:
            wanted.append(row.exception_id)
        if row.bookkeeping_id is not None:
            wanted.append(row.bookkeeping_id)
    return load_shown(session, wanted)


def model_view(
    row: ListedRow, loaded: Mapping[uuid.UUID, StoredEvent]
) -> tuple[EventView, bool] | None:
    """The view of a model row, with whether it is a generated instance shown with its
    master's bookkeeping (`instance_json` may render it from a sibling's document); `None`
    for an item whose row went since it was listed (deleted by a concurrent request)."""
    owner = loaded.get(row.owner_id)
    if owner is None:
        return None
    if not row.in_series:
        return EventView(row.api_id, owner.event, owner), False
    original = original_start(row)
    if row.exception_id is not None:
        exception = loaded.get(row.exception_id)
        if exception is None:
            return None
        event = exception.event
    elif not owner.event.recurrence or original is None:
        event = owner.event
    else:
        event = instance_of(owner.event, series_id_of(owner), original)
        if row.bookkeeping_id is None:
            return EventView(row.api_id, event, owner, series=owner), True
    keeper = loaded.get(row.bookkeeping_id) if row.bookkeeping_id is not None else None
    return EventView(row.api_id, event, keeper or owner, series=owner), False
