"""``transparency``, ``visibility``, ``colorId`` and ``conferenceData`` of Google Event
resources <-> the `Event` fields of `calsync.domain.event_props` (decisions P1-P4).

Reading is lenient, as for every field Google sends (decisions H1): an unknown
transparency or visibility reads as Google's default, a colour id or conference text that
cannot be stored reads as absent.

Writing sends transparency, visibility and the colour id on an insert (the colour when
set), and on a patch what differs from Google's last known copy (the colour as JSON null
when it was cleared). A conference is never copied back to Google: the body carries
``conferenceData`` only to ask for a new conference (``createRequest`` with calsync's
request id, when Google's copy does not have that request yet) or to remove one the
event no longer has (JSON null). Every write goes with ``conferenceDataVersion=1``
(`CONFERENCE_DATA_VERSION`), so that Google neither ignores the request nor drops the
conference an event already has
(https://developers.google.com/calendar/api/v3/reference/events/patch).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from calsync.domain.event_props import Conference, ConferenceStatus, Transparency, Visibility
from calsync.domain.models import Event

__all__ = [
    "CONFERENCE_DATA_VERSION",
    "conference_from_google",
    "conference_to_google",
    "props_from_google",
    "props_to_google",
]

#: The ``conferenceDataVersion`` every insert, patch and update sends.
CONFERENCE_DATA_VERSION: Final = 1
#: The longest colour id calsync stores (``events.color_id``); Google's are 1-2 digits.
COLOR_ID_LIMIT: Final = 16

_TRANSPARENCIES: Final = {value.value: value for value in Transparency}
_VISIBILITIES: Final = {value.value: value for value in Visibility}
_STATUSES: Final = {value.value: value for value in ConferenceStatus}
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")
_LEAVE: Final = object()


def props_from_google(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The `Event` fields `transparency`, `visibility`, `color_id` and `conference` of
    an Event resource."""
    transparency = resource.get("transparency")
    visibility = resource.get("visibility")
    color = _text(resource.get("colorId"))
    return {
        "transparency": _TRANSPARENCIES.get(transparency, Transparency.OPAQUE)
        if isinstance(transparency, str)
        else Transparency.OPAQUE,
        "visibility": _VISIBILITIES.get(visibility, Visibility.DEFAULT)
        if isinstance(visibility, str)
        else Visibility.DEFAULT,
        "color_id": color if color is not None and len(color) <= COLOR_ID_LIMIT else None,
        "conference": conference_from_google(resource.get("conferenceData")),
    }


def conference_from_google(data: Any) -> Conference | None:
    """The `Conference` a ``conferenceData`` object describes (`None` for none).

    The status is the create request's when there is one, else ``success`` (Google
    requires entry points of a conference added without a request); the address is the
    ``video`` entry point's, else the first entry point's.
    """
    if not isinstance(data, Mapping) or not data:
        return None
    create = _object(data.get("createRequest"))
    code = _object(create.get("status")).get("statusCode")
    points = [p for p in data.get("entryPoints") or () if isinstance(p, Mapping)]
    video = next((p for p in points if p.get("entryPointType") == "video"), None)
    chosen = video or (points[0] if points else None)
    solution = _object(_object(data.get("conferenceSolution")).get("key")).get("type")
    if solution is None:
        solution = _object(create.get("conferenceSolutionKey")).get("type")
    status = _STATUSES.get(code) if isinstance(code, str) else None
    return Conference(
        status=status or ConferenceStatus.SUCCESS,
        solution=_text(solution),
        uri=_text(chosen.get("uri")) if chosen is not None else None,
        request_id=_text(create.get("requestId")),
        conference_id=_text(data.get("conferenceId")),
    )


def props_to_google(event: Event, previous: Event | None) -> dict[str, Any]:
    """The body keys that write `event`'s fields: all of them without `previous`; with
    `previous` (Google's last known copy) those that differ from it, and what clears the
    colour and removes the conference."""
    body: dict[str, Any] = {}
    # A patch sends what changed since `previous` only: rows stored before these fields
    # existed hold the defaults whatever Google has (migration 0011), and a blind write
    # of them would reset Google's values at the next edit of anything else.
    if previous is None or event.transparency != previous.transparency:
        body["transparency"] = event.transparency.value
    if previous is None or event.visibility != previous.visibility:
        body["visibility"] = event.visibility.value
    if event.color_id != (previous.color_id if previous is not None else None):
        body["colorId"] = event.color_id  # JSON null clears it
    conference = conference_to_google(
        event.conference, previous.conference if previous is not None else None
    )
    if conference is not _LEAVE:
        body["conferenceData"] = conference
    return body


def conference_to_google(conference: Conference | None, previous: Conference | None) -> Any:
    """The ``conferenceData`` to send, or `_LEAVE` to leave it out (Google keeps its own):
    a create request that `previous` does not have yet, JSON null (`None`) to remove
    `previous`'s conference, nothing otherwise."""
    if conference is None:
        return None if previous is not None else _LEAVE
    if (
        conference.status == ConferenceStatus.PENDING
        and conference.request_id is not None
        and conference.solution is not None
        and (previous is None or previous.request_id != conference.request_id)
    ):
        return {
            "createRequest": {
                "requestId": conference.request_id,
                "conferenceSolutionKey": {"type": conference.solution},
            }
        }
    return _LEAVE


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    """A text Google gave, if calsync can store it as it is (else `None`)."""
    if not isinstance(value, str) or not value or _UNSTORABLE.search(value):
        return None
    return value
