"""Google's per-event display and availability properties, and conference links.

Pure values (no I/O), provider-neutral in name, Google's in meaning
(https://developers.google.com/calendar/api/v3/reference/events):

- `Transparency`: whether the event blocks time (``opaque``: busy, Google's default) or
  not (``transparent``: free).
- `Visibility`: ``default`` (the calendar's default), ``public``, ``private`` or
  ``confidential``.
- a colour id: one of Google's event palette ids, ``"1"`` to ``"11"``
  (`EVENT_COLOR_IDS`; ``colors.get``), or none (the calendar's colour).
- `Conference`: the video conference of an event, as far as calsync knows it: a
  request calsync made (``pending`` until Google answers), or what Google created.

Decisions P1-P4 in docs/decisions.md say how calsync reads and writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "EVENT_COLOR_IDS",
    "MEET_SOLUTION",
    "Conference",
    "ConferenceStatus",
    "Transparency",
    "Visibility",
]


class Transparency(StrEnum):
    OPAQUE = "opaque"
    TRANSPARENT = "transparent"


class Visibility(StrEnum):
    DEFAULT = "default"
    PUBLIC = "public"
    PRIVATE = "private"
    CONFIDENTIAL = "confidential"


#: Google's event colour palette (``colors.get``, the ``event`` map): ids "1" to "11".
EVENT_COLOR_IDS: Final = frozenset(str(number) for number in range(1, 12))

#: Google's ``conferenceSolutionKey.type`` of a Google Meet conference.
MEET_SOLUTION: Final = "hangoutsMeet"


class ConferenceStatus(StrEnum):
    """Google's ``createRequest.status.statusCode``: ``pending`` while Google creates the
    conference, then ``success`` (entry points filled) or ``failure`` (none)."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class Conference:
    """An event's conference.

    `solution` is Google's solution type (``hangoutsMeet``, ``addOn``, ...), `uri` the
    address to join by video (`None` until created), `request_id` the id of the create
    request that made it (calsync's or another client's; `None` for a conference that was
    added without one), `conference_id` Google's id of it. Values compare by all fields,
    so a pending request and the conference it became differ.
    """

    status: ConferenceStatus
    solution: str | None = None
    uri: str | None = None
    request_id: str | None = None
    conference_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ConferenceStatus(self.status))

    @classmethod
    def meet_request(cls, request_id: str | None = None) -> Conference:
        """A Meet link calsync asks Google for; `request_id` is set when the event's id is
        known (`with_request_id`)."""
        return cls(status=ConferenceStatus.PENDING, solution=MEET_SOLUTION, request_id=request_id)

    @property
    def awaits_request_id(self) -> bool:
        """Whether this is a request calsync made that has no request id yet."""
        return self.status == ConferenceStatus.PENDING and self.request_id is None

    def with_request_id(self, request_id: str) -> Conference:
        return Conference(
            status=self.status,
            solution=self.solution,
            uri=self.uri,
            request_id=request_id,
            conference_id=self.conference_id,
        )
