"""events.list and events.instances: filters, paging, sync tokens.

Paging and sync follow https://developers.google.com/calendar/api/guides/sync:
- ``maxResults`` defaults to 250 and is capped at 2500; pages may hold fewer items;
- every page but the last carries ``nextPageToken``; the last alone ``nextSyncToken``;
- a listing's sync token is the calendar's change number when its first page was
  served, so anything that changes while a client pages is in the next incremental;
- ``syncToken`` walks the calendar's change log (O(changes)) and always includes
  deleted events; it may not be combined with the filters Google forbids (400), and an
  invalidated, expired or foreign token is 410 ``fullSyncRequired``.

Cancelled events are listed as Google's Event resource (``status``) describes them: a
cancelled exception of a live series with only the fields Google guarantees
(`cancelled_stub`); a deleted event likewise, unless ``showDeleted=true`` is asked for
explicitly: then it keeps its details ("On the organizer's calendar, cancelled events
continue to expose event details ... However, incremental sync requests with
showDeleted set to false will not return these details").

Page and sync tokens are `calsync.emulator.list_tokens`'. Must run under
``EmulatorState.lock``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from calsync.emulator import errors, timefmt
from calsync.emulator.event_log import StoredEvent
from calsync.emulator.event_model import JSON, cancelled_stub
from calsync.emulator.event_service import EventScope, require_reader, resolve
from calsync.emulator.event_types import event_types_filter
from calsync.emulator.expansion import expand, series_overlaps
from calsync.emulator.list_tokens import (
    Cursor,
    make_sync_token,
    read_cursor,
    read_sync_token,
    write_cursor,
)

DEFAULT_PAGE = 250
MAX_PAGE = 2500
FORBIDDEN_WITH_SYNC_TOKEN = (
    "timeMin",
    "timeMax",
    "updatedMin",
    "q",
    "orderBy",
    "iCalUID",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)


class Query:
    """Read access to query parameters, repeated ones included."""

    def __init__(self, getlist: Callable[[str], Sequence[str]]) -> None:
        self._getlist = getlist

    def get(self, name: str) -> str | None:
        values = self._getlist(name)
        return values[-1] if values else None

    def getlist(self, name: str) -> list[str]:
        return list(self._getlist(name))


def _flag(query: Query, name: str) -> bool | None:
    value = query.get(name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise errors.invalid(f"Invalid boolean value for {name}.", name)
    return value.lower() == "true"


def _max_results(query: Query) -> int:
    raw = query.get("maxResults")
    if raw is None:
        return DEFAULT_PAGE
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid("Invalid value for maxResults.", "maxResults") from None
    if value < 1:
        raise errors.invalid("Invalid value for maxResults.", "maxResults")
    return min(value, MAX_PAGE)


def _properties(query: Query, name: str) -> list[tuple[str, str]]:
    found = []
    for item in query.getlist(name):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise errors.invalid(f"Invalid {name}: expected name=value.", name)
        found.append((key, value))
    return found


@dataclass(frozen=True)
class ListParams:
    max_results: int
    page_token: str | None
    sync_token: str | None
    show_deleted: bool
    single_events: bool
    time_min: datetime | None
    time_max: datetime | None
    updated_min: datetime | None
    order_by: str | None
    q: str | None
    ical_uid: str | None
    private_props: list[tuple[str, str]]
    shared_props: list[tuple[str, str]]
    zone: tzinfo | None
    zone_name: str | None
    #: ``eventTypes``: the types to list, `None` for every type (Google's default).
    event_types: frozenset[str] | None = None
    #: ``showDeleted=true`` was asked for: deleted events are listed with their details.
    deleted_details: bool = False

    @property
    def filters_content(self) -> bool:
        """Whether a filter other than the time window and deletion applies."""
        return (
            self.event_types is not None
            or self.updated_min is not None
            or self.ical_uid is not None
            or bool(self.private_props)
            or bool(self.shared_props)
            or self.q is not None
        )

    @classmethod
    def parse(cls, query: Query) -> ListParams:
        sync_token = query.get("syncToken")
        show_deleted = _flag(query, "showDeleted")
        if sync_token is not None:
            for name in FORBIDDEN_WITH_SYNC_TOKEN:
                if query.getlist(name):
                    raise errors.invalid(
                        f"The parameter {name} cannot be used together with syncToken.", name
                    )
            if show_deleted is False:
                raise errors.invalid(
                    "showDeleted cannot be false together with syncToken.", "showDeleted"
                )
        times = {
            name: timefmt.parse_rfc3339(value, location=name)
            for name in ("timeMin", "timeMax", "updatedMin")
            if (value := query.get(name)) is not None
        }
        if "timeMin" in times and "timeMax" in times and times["timeMax"] <= times["timeMin"]:
            raise errors.GoogleApiError(400, "timeRangeEmpty", location="timeMax")
        single = bool(_flag(query, "singleEvents"))
        order_by = query.get("orderBy")
        if order_by not in (None, "startTime", "updated"):
            raise errors.invalid(f"Invalid value for orderBy: {order_by}", "orderBy")
        if order_by == "startTime" and not single:
            raise errors.bad_request(
                "The requested ordering is not available for the particular query.", "orderBy"
            )
        zone_name = query.get("timeZone")
        return cls(
            max_results=_max_results(query),
            page_token=query.get("pageToken"),
            sync_token=sync_token,
            show_deleted=bool(show_deleted) or sync_token is not None,
            single_events=single,
            time_min=times.get("timeMin"),
            time_max=times.get("timeMax"),
            updated_min=times.get("updatedMin"),
            order_by=order_by,
            q=query.get("q"),
            ical_uid=query.get("iCalUID"),
            private_props=_properties(query, "privateExtendedProperty"),
            shared_props=_properties(query, "sharedExtendedProperty"),
            zone=timefmt.zone(zone_name, location="timeZone") if zone_name else None,
            zone_name=zone_name,
            event_types=event_types_filter(query.getlist("eventTypes")),
            deleted_details=bool(show_deleted),
        )


# filters and rendering ----------------------------------------------------------------


def _text_matches(resource: Mapping[str, Any], q: str) -> bool:
    people = [resource.get("organizer") or {}, *(resource.get("attendees") or [])]
    haystack = " ".join(
        [str(resource.get(key, "")) for key in ("summary", "description", "location")]
        + [f"{p.get('email', '')} {p.get('displayName', '')}" for p in people]
    ).lower()
    return all(term in haystack for term in q.lower().split())


def _matches(event: StoredEvent, params: ListParams) -> bool:
    if not params.filters_content:
        return True
    resource = event.resource
    if (
        params.event_types is not None
        and resource.get("eventType", "default") not in params.event_types
    ):
        return False
    if params.updated_min is not None and event.updated < params.updated_min:
        return False
    if params.ical_uid is not None and resource.get("iCalUID") != params.ical_uid:
        return False
    props = resource.get("extendedProperties") or {}
    for scope_name, wanted in (("private", params.private_props), ("shared", params.shared_props)):
        have = props.get(scope_name) or {}
        if any(have.get(key) != value for key, value in wanted):
            return False
    return params.q is None or (not event.cancelled and _text_matches(resource, params.q))


class Encoded(str):
    """An item of a listing that is already JSON text (see `listed`)."""

    __slots__ = ()


def listed(event: StoredEvent, zone: tzinfo | None) -> JSON | Encoded:
    """`render`, as the stored event's JSON encoded once when it is listed as stored."""
    if zone is None and not event.cancelled:
        return Encoded(event.encoded)
    return render(event, zone)


def render(event: StoredEvent, zone: tzinfo | None, *, details: bool = False) -> JSON:
    """The listed resource in `zone`; a cancelled one as `cancelled_stub` unless
    `details`."""
    if event.cancelled and not details:
        return cancelled_stub(event.resource)
    resource = dict(event.resource)
    if zone is not None:
        for key in ("start", "end", "originalStartTime"):
            value = resource.get(key)
            if isinstance(value, dict) and "dateTime" in value:
                moment = datetime.fromisoformat(value["dateTime"])
                resource[key] = value | {"dateTime": timefmt.local_iso(moment, zone)}
    return resource


def _deleted_visible(scope: EventScope, event: StoredEvent, params: ListParams) -> bool:
    """Whether a cancelled event belongs in a non-expanded listing."""
    if params.show_deleted or params.updated_min is not None:
        return True
    # Google lists cancelled exceptions of live series even without showDeleted.
    master = scope.log.get(event.master_id) if event.master_id else None
    return master is not None and not master.cancelled


def _include_unexpanded(scope: EventScope, event: StoredEvent, params: ListParams) -> bool:
    if event.cancelled and not _deleted_visible(scope, event, params):
        return False
    if not _matches(event, params):
        return False
    if event.is_master and not event.cancelled:
        return series_overlaps(scope.log, event, params.time_min, params.time_max)
    return event.timing.overlaps(params.time_min, params.time_max)


def _expanded_rows(scope: EventScope, params: ListParams) -> list[StoredEvent]:
    show_deleted = params.show_deleted or params.updated_min is not None
    rows: list[StoredEvent] = []
    for event in scope.log.ordered():
        if event.master_id is not None and scope.log.get(event.master_id) is not None:
            continue  # exceptions are listed in their series' place
        if event.is_master:
            if event.cancelled:
                continue
            instances = expand(
                scope.log,
                event,
                after=params.time_min,
                before=params.time_max,
                show_deleted=show_deleted,
            )
            rows.extend(i for i in instances if _matches(i, params))
        elif (
            (not event.cancelled or show_deleted)
            and _matches(event, params)
            and event.timing.overlaps(params.time_min, params.time_max)
        ):
            rows.append(event)
    if params.order_by == "startTime":
        rows.sort(key=lambda e: (e.timing.start.instant, e.id))
    return rows


# the listings -------------------------------------------------------------------------


#: Renders one listed event: `render` (a dict) or `listed` (maybe an `Encoded` text).
Renderer = Callable[[StoredEvent, tzinfo | None], JSON | Encoded]
#: One page: its items, and where the next one starts (None: this page is the last).
Page = tuple[list[JSON | Encoded], Cursor | None]


def _is_deleted(scope: EventScope, event: StoredEvent) -> bool:
    """Whether a cancelled event is a deleted one, not a cancelled exception of a live
    series (Google's Event resource, ``status``: the two states of ``cancelled``)."""
    master = scope.log.get(event.master_id) if event.master_id is not None else None
    return master is None or master.cancelled


def _renderer(scope: EventScope, params: ListParams, encoded: bool) -> Renderer:
    """How `list_events` renders its items: `listed` with `encoded`, else `render`; a
    deleted event with its details when ``showDeleted=true`` was asked for."""
    plain: Renderer = listed if encoded else render

    def item(event: StoredEvent, zone: tzinfo | None) -> JSON | Encoded:
        if event.cancelled and params.deleted_details and _is_deleted(scope, event):
            if encoded and zone is None:
                return Encoded(event.encoded)
            return render(event, zone, details=True)
        return plain(event, zone)

    return item


def list_events(
    scope: EventScope, query: Query, *, sync_token_ttl: int | None, encoded: bool = False
) -> JSON:
    """events.list; see the module docstring for the paging and sync contract. With
    `encoded`, items may be `Encoded` JSON texts (answer with `encode_listing`); else all
    are dicts."""
    require_reader(scope)
    params = ListParams.parse(query)
    item = _renderer(scope, params, encoded)
    cursor = read_cursor(scope, params.page_token) if params.page_token else None
    if cursor is None and params.sync_token is not None:
        since = read_sync_token(scope, params.sync_token, ttl_seconds=sync_token_ttl)
        cursor = Cursor("changes", since, scope.log.seq, since)
    elif cursor is None:
        computed = params.single_events or params.order_by is not None
        cursor = Cursor("computed" if computed else "inserted", 0, scope.log.seq)
    if cursor.mode == "changes":
        items, next_cursor = _changes_page(scope, params, cursor, item)
    elif cursor.mode == "inserted":
        items, next_cursor = _inserted_page(scope, params, cursor, item)
    else:
        items, next_cursor = _computed_page(scope, params, cursor, item)
    body = _envelope(scope, params.zone_name)
    if next_cursor is not None:
        body["nextPageToken"] = write_cursor(scope, next_cursor)
    else:
        body["nextSyncToken"] = make_sync_token(scope, cursor.snapshot)
    body["items"] = items
    return body


def _changes_page(scope: EventScope, params: ListParams, cursor: Cursor, item: Renderer) -> Page:
    """An incremental page: the events changed after `cursor`'s change number up to its
    snapshot, deleted ones too; a changed series as its instances with ``singleEvents``."""
    items: list[JSON | Encoded] = []
    changed = scope.log.changed_between(cursor.position, cursor.snapshot)
    page = changed[: params.max_results]
    for event in page:
        if params.single_events and event.is_master and not event.cancelled:
            instances = expand(scope.log, event, after=None, before=None, show_deleted=True)
            items.extend(item(i, params.zone) for i in instances)
        else:
            items.append(item(event, params.zone))
    if len(changed) > len(page):
        return items, Cursor("changes", page[-1].seq, cursor.snapshot, cursor.since)
    return items, None


def _inserted_page(scope: EventScope, params: ListParams, cursor: Cursor, item: Renderer) -> Page:
    """A page in insertion order (no ``singleEvents``, no ``orderBy``): the events from
    `cursor`'s offset that pass the filters, until the page is full."""
    items: list[JSON | Encoded] = []
    events = scope.log.ordered()
    index = cursor.position
    while index < len(events) and len(items) < params.max_results:
        event = events[index]
        index += 1
        if _include_unexpanded(scope, event, params):
            items.append(item(event, params.zone))
    if any(_include_unexpanded(scope, e, params) for e in events[index:]):
        return items, Cursor("inserted", index, cursor.snapshot)
    return items, None


def _computed_page(scope: EventScope, params: ListParams, cursor: Cursor, item: Renderer) -> Page:
    """A page of the whole filtered (and with ``singleEvents`` expanded) list, sorted as
    ``orderBy`` asks, from `cursor`'s offset; the list is computed again for each page."""
    rows = (
        _expanded_rows(scope, params)
        if params.single_events
        else [e for e in scope.log.ordered() if _include_unexpanded(scope, e, params)]
    )
    if params.order_by == "updated":
        rows.sort(key=lambda e: (e.updated, e.seq))
    end = cursor.position + params.max_results
    items = [item(e, params.zone) for e in rows[cursor.position : end]]
    if end < len(rows):
        return items, Cursor("computed", end, cursor.snapshot)
    return items, None


def list_instances(scope: EventScope, event_id: str, query: Query) -> JSON:
    """events.instances of a recurring event, ordered by original start."""
    require_reader(scope)
    master = resolve(scope, event_id)
    if master.master_id is not None or not master.is_master:
        raise errors.invalid("The event is not a recurring event.", "eventId")
    if master.cancelled:
        raise errors.deleted()
    show_deleted = bool(_flag(query, "showDeleted"))
    times = {
        name: timefmt.parse_rfc3339(value, location=name)
        for name in ("timeMin", "timeMax")
        if (value := query.get(name)) is not None
    }
    zone_name = query.get("timeZone")
    zone = timefmt.zone(zone_name, location="timeZone") if zone_name else None
    rows = expand(  # events.instances' timeMin is inclusive, events.list's exclusive
        scope.log,
        master,
        after=times.get("timeMin"),
        before=times.get("timeMax"),
        show_deleted=show_deleted,
        end_inclusive=True,
    )
    original_start = query.get("originalStart")
    if original_start is not None:
        wanted = timefmt.parse_rfc3339(original_start, location="originalStart")
        suffix = (
            wanted.strftime("%Y%m%d")
            if master.timing.all_day
            else wanted.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        )
        rows = [r for r in rows if r.suffix == suffix]
    rows.sort(key=lambda e: (e.timing.start.instant, e.id))
    page_token = query.get("pageToken")
    offset = read_cursor(scope, page_token).position if page_token else 0
    end = offset + _max_results(query)
    body = _envelope(scope, zone_name)
    if end < len(rows):
        body["nextPageToken"] = write_cursor(scope, Cursor("instances", end, scope.log.seq))
    body["items"] = [render(r, zone) for r in rows[offset:end]]
    return body


def encode_listing(body: Mapping[str, Any]) -> str:
    """The compact JSON of a `list_events` answer (its ``items`` last, as built)."""
    compact = (",", ":")
    head = json.dumps({k: v for k, v in body.items() if k != "items"}, separators=compact)
    items = ",".join(
        item if isinstance(item, Encoded) else json.dumps(item, separators=compact)
        for item in body.get("items", ())
    )
    return f'{head[:-1]}{"," if len(head) > 2 else ""}"items":[{items}]}}'


def _envelope(scope: EventScope, zone_name: str | None) -> JSON:
    calendar = scope.calendar
    body: JSON = {
        "kind": "calendar#events",
        "etag": f'"{scope.log.seq}"',
        "summary": calendar.summary,
    }
    if calendar.description:
        body["description"] = calendar.description
    body.update(
        {
            "updated": timefmt.utc_millis(scope.log.last_updated or scope.now),
            "timeZone": zone_name or calendar.time_zone,
            "accessRole": scope.role,
            "defaultReminders": calendar.default_reminders(scope.actor),
        }
    )
    return body
