"""Conference data (``conferenceData``) as Google treats it on event writes and reads.

Google's rules modelled here (https://developers.google.com/calendar/api/v3/reference/events,
``events.insert``/``patch``/``update``, parameter ``conferenceDataVersion``; the
``CreateConferenceRequest`` and ``ConferenceRequestStatus`` types):

- ``conferenceDataVersion`` is 0 (the default) or 1; anything else is 400 ``invalid``.
  Version 0 "assumes no conference data support and ignores conference data in the
  event's body"; a write at version 0 also drops the conference the event had (what
  calsync's issue 17 reports of Google: a client that does not declare version 1 loses
  an existing Meet link).
- At version 1, ``conferenceData`` with a ``createRequest`` asks for a new conference:
  ``requestId`` and ``conferenceSolutionKey.type`` are required (400 otherwise); a
  request id equal to the event's current request's is ignored ("If an ID provided is
  the same as for the previous request, the request is ignored"). The answer shows the
  request with ``status.statusCode`` ``pending``; creation is asynchronous: the
  conference is created (``success``, with a ``video`` entry point, the solution and a
  conference id) or not (``failure``, no entry points) on the first read of the calendar
  at least ``conference_delay_seconds`` after the request (emulator config; 0: the next
  read), which changes the event (new etag, listed by the next incremental sync, pushed
  to watchers), as Google's own later update would. ``conference_outcome`` picks
  ``success`` or ``failure``.
- At version 1, ``conferenceData`` without a ``createRequest`` copies a conference; it
  needs ``conferenceSolution`` and at least one entry point. JSON null removes the
  conference; leaving the field out keeps it on a patch and drops it on an update (a
  full replacement).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from calsync.emulator import errors, timefmt
from calsync.emulator.event_log import EventLog, StoredEvent
from calsync.emulator.event_model import JSON, new_etag, ordered

__all__ = [
    "SOLUTIONS",
    "ConferenceWrite",
    "complete_due",
    "conference_for_write",
    "parse_version",
]

#: ``conferenceSolutionKey.type`` values Google documents.
SOLUTIONS: Final = frozenset({"eventHangout", "eventNamedHangout", "hangoutsMeet", "addOn"})
_NAMES: Final = {"hangoutsMeet": "Google Meet", "eventHangout": "Hangouts"}
_LETTERS: Final = "abcdefghijklmnopqrstuvwxyz"


def parse_version(value: str | None) -> int:
    """The ``conferenceDataVersion`` query parameter (absent: 0); 400 when not 0 or 1."""
    if value is None:
        return 0
    if value.strip() not in ("0", "1"):
        raise errors.invalid(
            "Invalid conferenceDataVersion value: must be 0 or 1.", "conferenceDataVersion"
        )
    return int(value)


@dataclass(frozen=True)
class ConferenceWrite:
    """The ``conferenceData`` an event holds after a write (`None`: none), and whether the
    write made a new create request (the caller records it with `EventLog.put` and
    ``pending_conferences``)."""

    data: JSON | None
    requested: bool = False


def conference_for_write(
    current: Mapping[str, Any] | None,
    body: Mapping[str, Any],
    *,
    version: int,
    patch: bool,
) -> ConferenceWrite:
    """What a write with `body` at `version` leaves of the event's conference `current`
    (`None` for an insert, or an event without one). Raises 400 for a malformed one."""
    if version != 1:
        return ConferenceWrite(None)
    if "conferenceData" not in body:
        return ConferenceWrite(copy.deepcopy(dict(current)) if patch and current else None)
    given = body["conferenceData"]
    if given is None:
        return ConferenceWrite(None)
    if not isinstance(given, Mapping):
        raise errors.invalid("Invalid conference data.", "conferenceData")
    create = given.get("createRequest")
    if create is None:
        return ConferenceWrite(_copied(given))
    request_id, solution = _request(create)
    before = (current or {}).get("createRequest") or {}
    if current and before.get("requestId") == request_id:
        return ConferenceWrite(copy.deepcopy(dict(current)))  # the same request: ignored
    return ConferenceWrite(
        {
            "createRequest": {
                "requestId": request_id,
                "conferenceSolutionKey": {"type": solution},
                "status": {"statusCode": "pending"},
            }
        },
        requested=True,
    )


def _request(create: Any) -> tuple[str, str]:
    if not isinstance(create, Mapping):
        raise errors.invalid("Invalid conference create request.", "conferenceData")
    request_id = create.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        raise errors.required(
            "Missing conference create request id.", "conferenceData.createRequest.requestId"
        )
    key = create.get("conferenceSolutionKey")
    solution = key.get("type") if isinstance(key, Mapping) else None
    if solution not in SOLUTIONS:
        raise errors.invalid(
            "Invalid conference type value.", "conferenceData.createRequest.conferenceSolutionKey"
        )
    return request_id, str(solution)


def _copied(given: Mapping[str, Any]) -> JSON:
    points = given.get("entryPoints")
    solution = given.get("conferenceSolution")
    if not isinstance(solution, Mapping) or not isinstance(points, list) or not points:
        raise errors.invalid(
            "Either conferenceSolution and at least one entryPoint, or createRequest is required.",
            "conferenceData",
        )
    return copy.deepcopy(dict(given))


def complete_due(
    log: EventLog, *, now: datetime, delay_seconds: float, outcome: str, calendar_id: str
) -> bool:
    """Create (or fail) the conferences requested at least `delay_seconds` before `now`
    in one calendar's `log`; returns whether any event changed. Requests of events
    deleted or changed since are dropped."""
    pending: dict[str, datetime] = log.pending_conferences
    changed = False
    for event_id, requested_at in list(pending.items()):
        if requested_at + timedelta(seconds=delay_seconds) > now:
            continue
        del pending[event_id]
        stored = log.get(event_id)
        data = stored.resource.get("conferenceData") if stored is not None else None
        status = ((data or {}).get("createRequest") or {}).get("status") or {}
        if stored is None or stored.cancelled or status.get("statusCode") != "pending":
            continue
        assert data is not None
        log.put(_completed(stored, data, now=now, outcome=outcome, calendar_id=calendar_id))
        changed = True
    return changed


def _completed(
    stored: StoredEvent, data: Mapping[str, Any], *, now: datetime, outcome: str, calendar_id: str
) -> StoredEvent:
    create = copy.deepcopy(dict(data["createRequest"]))
    create["status"] = {"statusCode": outcome}
    made: JSON = {"createRequest": create}
    if outcome == "success":
        solution = create["conferenceSolutionKey"]["type"]
        code = _meeting_code(calendar_id, stored.id, create["requestId"])
        made["entryPoints"] = [
            {
                "entryPointType": "video",
                "uri": f"https://meet.google.com/{code}",
                "label": f"meet.google.com/{code}",
            }
        ]
        made["conferenceSolution"] = {
            "key": {"type": solution},
            "name": _NAMES.get(solution, solution),
        }
        made["conferenceId"] = code
    resource = copy.deepcopy(dict(stored.resource))
    resource["conferenceData"] = made
    resource["etag"] = new_etag()
    resource["updated"] = timefmt.utc_millis(now)
    return StoredEvent(
        resource=ordered(resource),
        timing=stored.timing,
        updated=now,
        master_id=stored.master_id,
        suffix=stored.suffix,
    )


def _meeting_code(*parts: str) -> str:
    """A Meet-like code (``abc-defg-hij``), the same for the same request."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    letters = "".join(_LETTERS[b % 26] for b in digest[:10])
    return f"{letters[:3]}-{letters[3:7]}-{letters[7:10]}"
