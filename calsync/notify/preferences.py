"""Notification preferences: the value, its strict validation, and its repository.

A user without a stored row has :data:`DEFAULT_PREFERENCES`: reminders at the event's own
lead times, by email, change notices on, no quiet hours. ``reminder_minutes`` of ``None``
means "the event's own reminders" (Google's ``reminders.overrides``; 10 minutes when the
event uses the calendar's defaults, which calsync does not know).

The webhook secret is generated here the first time a webhook URL is stored, kept
encrypted (:class:`~calsync.store.secrets.SecretBox`) and shown to its owner, who needs it
to verify signatures.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.domain.errors import FieldErrors, ValidationError
from calsync.domain.timezones import is_valid_zone, zone
from calsync.notify.addresses import UnsafeAddress, check_url_syntax
from calsync.store import notification_preferences
from calsync.store.secrets import Secret, SecretBox
from calsync.store.tables import NotificationPreference

__all__ = [
    "CHANNELS",
    "DEFAULT_PREFERENCES",
    "FIELDS",
    "Preferences",
    "QuietHours",
    "load_preferences",
    "load_webhook_secret",
    "of_joined",
    "parse_update",
    "preferences_json",
    "save_preferences",
]

CHANNELS: Final = ("email", "push", "webhook")
FIELDS: Final = ("reminder_minutes", "channels", "webhook_url", "change_notices", "quiet_hours")
MAX_REMINDERS: Final = 5
MAX_LEAD_MINUTES: Final = 40_320  # four weeks, Google's own limit
_CLOCK_TIME: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily span of wall-clock time, possibly across midnight, in ``timezone`` (or in the
    user's own zone when ``None``), during which notices to people are held back."""

    start: time
    end: time
    timezone: str | None = None

    def contains(self, instant: datetime, user_zone: str) -> bool:
        """Whether ``instant`` falls inside the quiet hours."""
        local = instant.astimezone(zone(self.timezone or user_zone)).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def end_after(self, instant: datetime, user_zone: str) -> datetime:
        """The first end of quiet hours after ``instant`` (an aware instant)."""
        tz = zone(self.timezone or user_zone)
        local = instant.astimezone(tz)
        day: date = local.date()
        for offset in (0, 1, 2):
            candidate = datetime.combine(day + timedelta(days=offset), self.end, tzinfo=tz)
            if candidate > local:
                return candidate
        raise AssertionError("a daily end always comes within two days")

    def to_json(self) -> dict[str, str]:
        data = {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}
        if self.timezone is not None:
            data["timezone"] = self.timezone
        return data


@dataclass(frozen=True, slots=True)
class Preferences:
    """How and when one user wants to be told. See the module docstring for defaults."""

    reminder_minutes: tuple[int, ...] | None = None
    channels: tuple[str, ...] = ("email",)
    webhook_url: str | None = None
    change_notices: bool = True
    quiet_hours: QuietHours | None = None

    def lead_times(self, event_reminders: Mapping[str, Any] | None) -> tuple[int, ...]:
        """The reminder lead times in minutes for an event with ``event_reminders`` (the
        ``events.reminders`` document: ``use_default`` and ``overrides``)."""
        if self.reminder_minutes is not None:
            return self.reminder_minutes
        document = event_reminders or {}
        if document.get("use_default", True):
            return (10,)
        minutes = {int(item[0]) for item in document.get("overrides") or ()}
        return tuple(sorted(m for m in minutes if 0 <= m <= MAX_LEAD_MINUTES))


DEFAULT_PREFERENCES: Final = Preferences()


def parse_update(body: Mapping[str, Any], current: Preferences) -> Preferences:
    """``current`` with the fields of ``body`` applied, every one checked strictly.

    Fields left out keep their values. Unknown fields are the caller's to refuse.

    Raises:
        FieldErrors: naming every offending field (a `ValidationError` whose own
            ``field`` and ``message`` are the first's).
    """
    readers: dict[str, Callable[[Any], Any]] = {
        "reminder_minutes": _reminder_minutes,
        "channels": _channels,
        "webhook_url": _webhook_url,
        "change_notices": _change_notices,
        "quiet_hours": _quiet_hours,
    }
    changes: dict[str, Any] = {}
    problems: list[ValidationError] = []
    for name, read in readers.items():
        if name in body:
            try:
                changes[name] = read(body[name])
            except ValidationError as err:
                problems.append(err)
    updated = replace(current, **changes)
    webhook_url_bad = any(p.field == "webhook_url" for p in problems)
    if "webhook" in updated.channels and updated.webhook_url is None and not webhook_url_bad:
        problems.append(ValidationError("webhook_url", "is required when channels include webhook"))
    if problems:
        raise FieldErrors(problems)
    return updated


def _change_notices(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError("change_notices", "must be true or false")
    return value


def _reminder_minutes(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValidationError("reminder_minutes", "must be a list of minutes or null")
    if len(value) > MAX_REMINDERS:
        raise ValidationError("reminder_minutes", f"at most {MAX_REMINDERS} lead times")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise ValidationError("reminder_minutes", "each lead time is a whole number")
        if not 0 <= item <= MAX_LEAD_MINUTES:
            raise ValidationError(
                "reminder_minutes", f"each lead time is between 0 and {MAX_LEAD_MINUTES}"
            )
    return tuple(sorted(set(value)))


def _channels(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("channels", "must be a list of channel names")
    unknown = [item for item in value if item not in CHANNELS]
    if unknown:
        raise ValidationError("channels", f"unknown channel {unknown[0]!r}; use {CHANNELS}")
    if len(set(value)) != len(value):
        raise ValidationError("channels", "lists a channel twice")
    return tuple(sorted(value, key=CHANNELS.index))


def _webhook_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("webhook_url", "must be an https URL or null")
    try:
        return check_url_syntax(value)
    except UnsafeAddress as err:
        raise ValidationError("webhook_url", str(err)) from None


def _quiet_hours(value: Any) -> QuietHours | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError("quiet_hours", 'must be {"start": "HH:MM", "end": "HH:MM"} or null')
    unknown = sorted(set(value) - {"start", "end", "timezone"})
    if unknown:
        raise ValidationError("quiet_hours", f"unknown key {unknown[0]!r}")
    bounds = []
    for key in ("start", "end"):
        raw = value.get(key)
        match = _CLOCK_TIME.match(raw) if isinstance(raw, str) else None
        if match is None:
            raise ValidationError("quiet_hours", f"{key} must be a time as HH:MM (24-hour)")
        bounds.append(time(int(match.group(1)), int(match.group(2))))
    if bounds[0] == bounds[1]:
        raise ValidationError("quiet_hours", "start and end must differ")
    timezone = value.get("timezone")
    if timezone is not None and (not isinstance(timezone, str) or not is_valid_zone(timezone)):
        raise ValidationError("quiet_hours", "timezone must be an IANA time zone name")
    return QuietHours(bounds[0], bounds[1], timezone)


def preferences_json(prefs: Preferences, webhook_secret: Secret | None) -> dict[str, Any]:
    """The API's shape of ``prefs``; the webhook secret is shown to its owner only."""
    return {
        "reminder_minutes": list(prefs.reminder_minutes)
        if prefs.reminder_minutes is not None
        else None,
        "channels": list(prefs.channels),
        "webhook_url": prefs.webhook_url,
        "webhook_secret": webhook_secret.reveal() if webhook_secret else None,
        "change_notices": prefs.change_notices,
        "quiet_hours": prefs.quiet_hours.to_json() if prefs.quiet_hours else None,
    }


def load_preferences(session: Session, user_id: uuid.UUID) -> Preferences:
    """The stored preferences of ``user_id``, or the defaults."""
    row = notification_preferences.of_user(session, user_id)
    return _from_row(row) if row is not None else DEFAULT_PREFERENCES


def load_many(session: Session, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, Preferences]:
    """The preferences of each of ``user_ids`` (defaults for those without a row)."""
    found = {user_id: DEFAULT_PREFERENCES for user_id in user_ids}
    for row in notification_preferences.of_users(session, user_ids):
        found[row.user_id] = _from_row(row)
    return found


def load_webhook_secret(session: Session, user_id: uuid.UUID, box: SecretBox) -> Secret | None:
    """The user's webhook signing secret, decrypted, or None when no webhook was set up."""
    encrypted = notification_preferences.webhook_secret_of(session, user_id)
    return Secret(box.decrypt(encrypted)) if encrypted else None


def save_preferences(
    session: Session, user_id: uuid.UUID, prefs: Preferences, box: SecretBox
) -> Secret | None:
    """Store ``prefs``; create the webhook secret the first time a URL is set.

    Returns the webhook secret (None without one). Does not commit.
    """
    secret = load_webhook_secret(session, user_id, box)
    if secret is None and prefs.webhook_url is not None:
        secret = Secret("whsec_" + secrets.token_urlsafe(32))
    notification_preferences.save(
        session,
        user_id,
        {
            # JSON null (not SQL NULL) in the JSON column means "the event's own reminders".
            "reminder_minutes": list(prefs.reminder_minutes)
            if prefs.reminder_minutes is not None
            else None,
            "channels": list(prefs.channels),
            "webhook_url": prefs.webhook_url,
            "webhook_secret_encrypted": box.encrypt(secret.reveal()) if secret else None,
            "change_notices": prefs.change_notices,
            "quiet_hours": prefs.quiet_hours.to_json() if prefs.quiet_hours else None,
            "updated_at": datetime.now().astimezone(),
        },
    )
    return secret


def of_joined(row: Any) -> Preferences:
    """The preferences of the owner of an event row read with them joined
    (`calsync.store.upcoming.replanning_rows`: ``has_preferences`` and the
    ``preference_*`` columns), the defaults when the owner has no row: what
    `load_many` gives for that owner."""
    if not row.has_preferences:
        return DEFAULT_PREFERENCES
    return _from_values(
        row.preference_reminder_minutes,
        row.preference_channels,
        row.preference_webhook_url,
        row.preference_change_notices,
        row.preference_quiet_hours,
    )


def _from_row(row: NotificationPreference | sa.Row[Any]) -> Preferences:
    return _from_values(
        row.reminder_minutes, row.channels, row.webhook_url, row.change_notices, row.quiet_hours
    )


def _from_values(
    minutes: Any, channels: Any, webhook_url: str | None, change_notices: bool, quiet: Any
) -> Preferences:
    return Preferences(
        reminder_minutes=tuple(int(m) for m in minutes) if isinstance(minutes, list) else None,
        channels=tuple(c for c in channels if c in CHANNELS),
        webhook_url=webhook_url,
        change_notices=change_notices,
        quiet_hours=_quiet_hours(quiet) if isinstance(quiet, dict) else None,
    )
