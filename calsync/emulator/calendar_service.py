"""calendarList and calendars operations for one user (pure; run under the state lock).

calendarList entries are per user; ``minAccessRole``, paging and ``syncToken`` work as
for events (removed entries come back as ``deleted: true`` in incremental results).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from calsync.emulator import errors, timefmt
from calsync.emulator.accounts import User
from calsync.emulator.calendars import ROLES, CalendarRecord, role_at_least
from calsync.emulator.event_model import new_etag
from calsync.emulator.listing import Query
from calsync.emulator.state import EmulatorState

LIST_DEFAULT_PAGE = 100
LIST_MAX_PAGE = 250


def _encode(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _decode(token: str, location: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        data = None
    if not isinstance(data, dict):
        if location == "syncToken":
            raise errors.full_sync_required()
        raise errors.invalid(f"Invalid {location} value.", location)
    return data


def _page_size(query: Query) -> int:
    raw = query.get("maxResults")
    try:
        size = int(raw) if raw is not None else LIST_DEFAULT_PAGE
    except ValueError:
        raise errors.invalid("Invalid value for maxResults.", "maxResults") from None
    if size < 1:
        raise errors.invalid("Invalid value for maxResults.", "maxResults")
    return min(size, LIST_MAX_PAGE)


def list_calendar_list(state: EmulatorState, user: User, query: Query) -> dict[str, Any]:
    """calendarList.list as ``user`` sees it."""
    min_role = query.get("minAccessRole")
    if min_role is not None and min_role not in ROLES[1:]:
        raise errors.invalid("Invalid value for minAccessRole.", "minAccessRole")
    sync_token = query.get("syncToken")
    if sync_token is not None and min_role is not None:
        raise errors.invalid(
            "The parameter minAccessRole cannot be used together with syncToken.",
            "minAccessRole",
        )
    page_token = query.get("pageToken")
    cursor = _decode(page_token, "pageToken") if page_token else None
    # a full listing's pages carry ``since: null`` (they list everything)
    since = int(cursor["since"]) if cursor and cursor.get("since") is not None else None
    if cursor is None and sync_token is not None:
        since = int(_decode(sync_token, "syncToken").get("s", -1))
        if since < 0 or since > user.list_seq:
            raise errors.full_sync_required()
    snapshot = int(cursor["snapshot"]) if cursor else user.list_seq
    offset = int(cursor["offset"]) if cursor else 0

    rows: list[tuple[int, dict[str, Any]]] = []
    for cal_id, seq in user.calendar_list.items():
        calendar = state.calendars.get(cal_id)
        if calendar is None or calendar.deleted or (since is not None and seq <= since):
            continue
        entry = calendar.list_entry(user.email)
        if min_role is None or role_at_least(entry["accessRole"], min_role):
            rows.append((seq, entry))
    if since is not None:
        for cal_id, seq in user.removed_calendars.items():
            if seq > since:
                gone = {"kind": "calendar#calendarListEntry", "etag": new_etag(), "id": cal_id}
                rows.append((seq, gone | {"deleted": True}))
        rows.sort(key=lambda row: row[0])
    size = _page_size(query)
    body: dict[str, Any] = {"kind": "calendar#calendarList", "etag": f'"{user.list_seq}"'}
    if offset + size < len(rows):
        body["nextPageToken"] = _encode(
            {"since": since, "snapshot": snapshot, "offset": offset + size}
        )
    else:
        body["nextSyncToken"] = _encode({"s": snapshot})
    body["items"] = [entry for _, entry in rows[offset : offset + size]]
    return body


def get_calendar_list_entry(state: EmulatorState, user: User, calendar_id: str) -> dict[str, Any]:
    cal_id = user.email if calendar_id == "primary" else calendar_id
    calendar = state.calendars.get(cal_id)
    if cal_id not in user.calendar_list or calendar is None or calendar.deleted:
        raise errors.not_found()
    return calendar.list_entry(user.email)


def insert_calendar(state: EmulatorState, user: User, body: Mapping[str, Any]) -> CalendarRecord:
    """calendars.insert: a secondary calendar owned by the caller, in their list."""
    summary = body.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise errors.required("Missing title.", "summary")
    time_zone = body.get("timeZone")
    if isinstance(time_zone, str):
        timefmt.zone(time_zone, location="timeZone")
    description = body.get("description")
    return state.create_calendar(
        user.email,
        summary=summary,
        time_zone=time_zone if isinstance(time_zone, str) else None,
        description=description if isinstance(description, str) else None,
    )


def delete_calendar(state: EmulatorState, user: User, calendar_id: str) -> None:
    """calendars.delete: owners only; the primary calendar cannot be deleted."""
    calendar, role = state.visible_calendar(user.email, calendar_id)
    if role != "owner":
        raise errors.GoogleApiError(403, "forbidden", "Forbidden")
    if calendar.primary:
        raise errors.GoogleApiError(
            400,
            "cannotDeletePrimaryCalendar",
            "Cannot delete primary calendar.",
            domain="calendar",
        )
    state.delete_calendar(calendar.id)
