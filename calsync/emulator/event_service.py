"""Event reads and writes on one calendar: get, insert, import, update, patch, delete.

Every function takes an :class:`EventScope` (calendar, the caller's role, the caller,
the emulator's ``now``), must run under ``EmulatorState.lock``, and raises
``GoogleApiError`` with Google's status and reason. Writes return the stored version;
the route layer sends push notifications. None of them does I/O.

Google behaviours kept here:
- client ids (base32hex, 5-1024 chars) and 409 ``duplicate`` on reuse, deleted ids too;
- ``etag`` changes on every write; ``If-Match`` mismatch is 412 ``conditionNotMet``;
- ``sequence`` rises when start, end, recurrence or status change;
- writing to an instance id creates an exception; deleting one stores a cancelled
  exception; deleting a master cancels the series and its exceptions;
- deleting an already deleted event is 410 ``deleted``; ``get`` still returns it;
- only the organizer may change shared extended properties (403
  ``forbiddenForNonOrganizer``); readers may not write (403 ``requiredAccessLevel``).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from calsync.emulator import errors, event_types, ids, timefmt
from calsync.emulator.calendars import CalendarRecord, role_at_least
from calsync.emulator.conference import ConferenceWrite, conference_for_write
from calsync.emulator.event_log import EventLog, StoredEvent
from calsync.emulator.event_model import (
    JSON,
    SIGNIFICANT_FIELDS,
    WRITABLE_FIELDS,
    Timing,
    clean_fields,
    mark_self,
    merge_patch,
    new_etag,
    ordered,
    parse_timing,
)
from calsync.emulator.expansion import original_of, validate_series, virtual_instance


@dataclass(frozen=True)
class EventScope:
    calendar: CalendarRecord
    role: str
    actor: str
    now: datetime

    @property
    def log(self) -> EventLog:
        return self.calendar.events

    @property
    def zone(self) -> tzinfo:
        return timefmt.zone(self.calendar.time_zone, location="timeZone")


def require_reader(scope: EventScope) -> None:
    if not role_at_least(scope.role, "reader"):
        raise errors.GoogleApiError(
            403, "requiredAccessLevel", "You need to have reader access to this calendar."
        )


def require_writer(scope: EventScope) -> None:
    if not role_at_least(scope.role, "writer"):
        raise errors.writer_access_required()


def resolve(scope: EventScope, event_id: str) -> StoredEvent:
    """The stored event, or the virtual instance an instance id names; else 404."""
    stored = scope.log.get(event_id)
    if stored is not None:
        return stored
    split = ids.split_instance_id(event_id)
    if split is None:
        raise errors.not_found()
    master = scope.log.get(split[0])
    if master is None or not master.is_master or master.cancelled:
        raise errors.not_found()
    original = original_of(master, split[1])
    if original is None:
        raise errors.not_found()
    return virtual_instance(master, original)


def get_event(scope: EventScope, event_id: str) -> Mapping[str, Any]:
    """events.get: deleted events are returned too, with ``status: cancelled``."""
    require_reader(scope)
    return resolve(scope, event_id).resource


def _html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def _check_if_match(current: Mapping[str, Any], if_match: str | None) -> None:
    if if_match is not None and if_match.strip() not in ("*", current["etag"]):
        raise errors.condition_not_met()


def _build(scope: EventScope, resource: JSON, fields: JSON) -> tuple[JSON, Timing]:
    """Finish a resource from server fields plus validated client fields."""
    timing = parse_timing(fields, calendar_zone=scope.zone)
    if fields.get("recurrence"):
        validate_series(fields["recurrence"], timing)
    resource.update(fields)
    resource["start"] = timing.start.to_resource()
    resource["end"] = timing.end.to_resource()
    resource.setdefault("status", "confirmed")
    resource.setdefault("reminders", {"useDefault": True})
    mark_self(resource, scope.calendar.id)
    return ordered(resource), timing


def _put(
    scope: EventScope, resource: JSON, timing: Timing, *, like: StoredEvent | None
) -> StoredEvent:
    return scope.log.put(
        StoredEvent(
            resource=resource,
            timing=timing,
            updated=scope.now,
            master_id=like.master_id if like else None,
            suffix=like.suffix if like else None,
        )
    )


def insert_event(
    scope: EventScope, body: Mapping[str, Any], *, conference_version: int = 0
) -> StoredEvent:
    """events.insert: 409 ``duplicate`` when the id was ever used in this calendar."""
    require_writer(scope)
    return _create(
        scope, body, ical_uid=None, organizer=None, conference_version=conference_version
    )


def seed_event(scope: EventScope, body: Mapping[str, Any]) -> StoredEvent:
    """An event Google itself makes in the calendar (Gmail, Contacts): any event type,
    ``birthdayProperties`` with a contact included, none of a client's type rules."""
    return _create(scope, body, ical_uid=None, organizer=None, seeded=True)


def import_event(
    scope: EventScope, body: Mapping[str, Any], *, conference_version: int = 0
) -> StoredEvent:
    """events.import: needs ``iCalUID``; an event with the same one is replaced.

    Unlike insert, the body may name another ``organizer`` (the calendar then holds a
    copy it does not organise).
    """
    require_writer(scope)
    ical_uid = body.get("iCalUID")
    if not isinstance(ical_uid, str) or not ical_uid:
        raise errors.required("Missing iCalUID.", "iCalUID")
    for existing in scope.log.ordered():
        if existing.resource.get("iCalUID") == ical_uid and existing.master_id is None:
            return update_event(
                scope,
                existing.id,
                body,
                if_match=None,
                patch=False,
                conference_version=conference_version,
            )
    organizer = body.get("organizer")
    if body.get("eventType") == "birthday":
        # "the event will be imported as a default event" (event types guide)
        body = {k: v for k, v in body.items() if k not in ("eventType", "birthdayProperties")}
    chosen: JSON | None = None
    if isinstance(organizer, Mapping) and isinstance(organizer.get("email"), str):
        chosen = {"email": organizer["email"]}
        if isinstance(organizer.get("displayName"), str):
            chosen["displayName"] = organizer["displayName"]
    return _create(
        scope, body, ical_uid=ical_uid, organizer=chosen, conference_version=conference_version
    )


def _create(
    scope: EventScope,
    body: Mapping[str, Any],
    *,
    ical_uid: str | None,
    organizer: JSON | None,
    seeded: bool = False,
    conference_version: int = 0,
) -> StoredEvent:
    fields = clean_fields(_without_conference(body))
    conference = conference_for_write(None, body, version=conference_version, patch=False)
    timing = parse_timing(fields, calendar_zone=scope.zone)
    if seeded:
        event_types.seed_fields(fields)
    else:
        # Status events describe the owner of a primary calendar: only they make them
        # (decisions K4), not another user the calendar is shared with.
        own_primary = scope.calendar.primary and scope.actor.lower() == scope.calendar.owner
        event_types.check_create(fields, timing, primary=own_primary)
    event_id = body.get("id")
    if event_id is None:
        event_id = ids.new_event_id()
    elif not isinstance(event_id, str) or not ids.is_valid_event_id(event_id):
        raise errors.invalid("Invalid resource id value.", "id")
    elif scope.log.get(event_id) is not None:
        raise errors.duplicate()
    sequence = fields.pop("sequence", 0)
    if organizer is None:
        organizer = {"email": scope.calendar.id}
        if not scope.calendar.primary:
            organizer["displayName"] = scope.calendar.summary
    stamp = timefmt.utc_millis(scope.now)
    resource: JSON = {
        "kind": "calendar#event",
        "etag": new_etag(),
        "id": event_id,
        "htmlLink": _html_link(event_id, scope.calendar.id),
        "created": stamp,
        "updated": stamp,
        "creator": {"email": scope.actor},
        "organizer": organizer,
        "iCalUID": ical_uid or f"{event_id}@google.com",
        "sequence": sequence,
        "eventType": "default",
    }
    if conference.data is not None:
        fields["conferenceData"] = conference.data
    built, timing = _build(scope, resource, fields)
    return _conference_requested(scope, _put(scope, built, timing, like=None), conference)


def _without_conference(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """`body` without ``conferenceData``, which `conference_for_write` decides."""
    if "conferenceData" not in body:
        return body
    return {key: value for key, value in body.items() if key != "conferenceData"}


def _conference_requested(
    scope: EventScope, stored: StoredEvent, conference: ConferenceWrite
) -> StoredEvent:
    if conference.requested:
        scope.log.pending_conferences[stored.id] = scope.now
    return stored


def _sequence(current: Mapping[str, Any], new: Mapping[str, Any], given: Any) -> int:
    previous = int(current.get("sequence", 0))
    if isinstance(given, int) and given > previous:
        return given
    changed = any(current.get(key) != new.get(key) for key in SIGNIFICANT_FIELDS)
    return previous + 1 if changed else previous


def _check_organizer_only(current: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    if (current.get("organizer") or {}).get("self"):
        return
    before = (current.get("extendedProperties") or {}).get("shared")
    after = (fields.get("extendedProperties") or {}).get("shared")
    if before != after:
        raise errors.GoogleApiError(403, "forbiddenForNonOrganizer")


def update_event(
    scope: EventScope,
    event_id: str,
    body: Mapping[str, Any],
    *,
    if_match: str | None,
    patch: bool,
    conference_version: int = 0,
) -> StoredEvent:
    """events.update (``patch=False``, full replacement) or events.patch (merge).

    On an instance id this stores an exception; on a master it leaves exceptions be.
    ``conferenceData`` follows `calsync.emulator.conference.conference_for_write`.
    """
    require_writer(scope)
    current = resolve(scope, event_id)
    _check_if_match(current.resource, if_match)
    is_exception = current.master_id is not None
    conference = conference_for_write(
        current.resource.get("conferenceData"), body, version=conference_version, patch=patch
    )
    writable = {k: v for k, v in _without_conference(body).items() if k in WRITABLE_FIELDS}
    if patch:
        base = {
            k: v
            for k, v in current.resource.items()
            if k in WRITABLE_FIELDS and k != "conferenceData"
        }
        fields = clean_fields(merge_patch(base, writable), is_exception=is_exception)
    else:
        fields = clean_fields(writable, is_exception=is_exception)
    _check_organizer_only(current.resource, fields)
    event_types.check_update(
        current.resource, fields, parse_timing(fields, calendar_zone=scope.zone)
    )
    given_sequence = fields.pop("sequence", None)
    resource: JSON = {
        k: copy.deepcopy(v)
        for k, v in current.resource.items()
        if k not in WRITABLE_FIELDS or k == "eventType"
    }
    if is_exception and scope.log.get(event_id) is None:
        resource["created"] = timefmt.utc_millis(scope.now)
    resource["etag"] = new_etag()
    resource["updated"] = timefmt.utc_millis(scope.now)
    if conference.data is not None:
        fields["conferenceData"] = conference.data
    built, timing = _build(scope, resource, fields)
    built["sequence"] = _sequence(current.resource, built, given_sequence)
    stored = _conference_requested(
        scope, _put(scope, ordered(built), timing, like=current), conference
    )
    if stored.cancelled and not current.cancelled and current.is_master:
        _cancel_exceptions(scope, current.id)
    return stored


def delete_event(scope: EventScope, event_id: str, *, if_match: str | None) -> StoredEvent:
    """events.delete: the event stays as a ``cancelled`` tombstone; 410 if it already is."""
    require_writer(scope)
    current = resolve(scope, event_id)
    if current.cancelled:
        raise errors.deleted()
    _check_if_match(current.resource, if_match)
    stored = _cancel(scope, current)
    if current.is_master:
        _cancel_exceptions(scope, current.id)
    return stored


def _cancel(scope: EventScope, current: StoredEvent) -> StoredEvent:
    resource = dict(copy.deepcopy(current.resource))
    resource["status"] = "cancelled"
    resource["etag"] = new_etag()
    resource["updated"] = timefmt.utc_millis(scope.now)
    resource["sequence"] = int(resource.get("sequence", 0)) + 1
    if current.master_id is not None and scope.log.get(current.id) is None:
        resource["created"] = resource["updated"]
    return scope.log.put(
        StoredEvent(
            resource=ordered(resource),
            timing=current.timing,
            updated=scope.now,
            master_id=current.master_id,
            suffix=current.suffix,
        )
    )


def _cancel_exceptions(scope: EventScope, master_id: str) -> None:
    for exception in scope.log.exceptions_of(master_id).values():
        if not exception.cancelled:
            _cancel(scope, exception)
