"""Calendars, their access control lists and the resources Google shows for them.

A calendar belongs to one owner; its ACL maps user emails to Google's access roles
(``owner`` > ``writer`` > ``reader`` > ``freeBusyReader``). A user's primary calendar has
the user's email as its id. ``calendarList`` entries are per user (``accounts.User``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from calsync.emulator.event_log import EventLog
from calsync.emulator.event_model import new_etag

ROLES = ("none", "freeBusyReader", "reader", "writer", "owner")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def role_at_least(role: str, minimum: str) -> bool:
    return _RANK.get(role, 0) >= _RANK[minimum]


@dataclass
class CalendarRecord:
    id: str
    summary: str
    owner: str
    time_zone: str = "UTC"
    description: str | None = None
    acl: dict[str, str] = field(default_factory=dict)
    events: EventLog = field(default_factory=EventLog)
    etag: str = field(default_factory=new_etag)
    sync_epoch: int = 0
    deleted: bool = False

    @property
    def primary(self) -> bool:
        return self.id == self.owner

    def role_of(self, email: str) -> str:
        return self.acl.get(email.lower(), "none")

    def resource(self) -> dict[str, Any]:
        """The ``calendar#calendar`` resource (calendars.get)."""
        body: dict[str, Any] = {
            "kind": "calendar#calendar",
            "etag": self.etag,
            "id": self.id,
            "summary": self.summary,
            "timeZone": self.time_zone,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }
        if self.description is not None:
            body["description"] = self.description
        return body

    def list_entry(self, email: str) -> dict[str, Any]:
        """The ``calendar#calendarListEntry`` resource as ``email`` sees it."""
        role = self.role_of(email)
        entry = self.resource()
        entry.update(
            {
                "kind": "calendar#calendarListEntry",
                "colorId": "14" if self.primary else "1",
                "backgroundColor": "#9fe1e7" if self.primary else "#ac725e",
                "foregroundColor": "#000000",
                "selected": True,
                "accessRole": role,
                "defaultReminders": self.default_reminders(email),
            }
        )
        if self.primary and self.owner == email.lower():
            entry["primary"] = True
            entry["notificationSettings"] = {
                "notifications": [
                    {"type": "eventCreation", "method": "email"},
                    {"type": "eventChange", "method": "email"},
                    {"type": "eventCancellation", "method": "email"},
                    {"type": "eventResponse", "method": "email"},
                ]
            }
        del entry["conferenceProperties"]
        return entry

    def default_reminders(self, email: str) -> list[dict[str, Any]]:
        if role_at_least(self.role_of(email), "writer"):
            return [{"method": "popup", "minutes": 10}]
        return []
