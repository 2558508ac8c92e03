"""Preferences are validated strictly, field by field, and quiet hours know their clock."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from calsync.domain.errors import ValidationError
from calsync.notify.preferences import (
    DEFAULT_PREFERENCES,
    Preferences,
    QuietHours,
    parse_update,
    preferences_json,
)


def test_a_full_update_is_applied_and_normalised() -> None:
    prefs = parse_update(
        {
            "reminder_minutes": [30, 10, 10],
            "channels": ["webhook", "email"],
            "webhook_url": "https://hooks.example.com/calsync",
            "change_notices": False,
            "quiet_hours": {"start": "22:00", "end": "07:00"},
        },
        DEFAULT_PREFERENCES,
    )

    assert prefs == Preferences(
        reminder_minutes=(10, 30),
        channels=("email", "webhook"),
        webhook_url="https://hooks.example.com/calsync",
        change_notices=False,
        quiet_hours=QuietHours(time(22), time(7)),
    )
    assert preferences_json(prefs, None) == {
        "reminder_minutes": [10, 30],
        "channels": ["email", "webhook"],
        "webhook_url": "https://hooks.example.com/calsync",
        "webhook_secret": None,
        "change_notices": False,
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    }


def test_fields_left_out_keep_their_values() -> None:
    current = Preferences(reminder_minutes=(5,), channels=("push",))
    assert parse_update({"change_notices": False}, current) == Preferences(
        reminder_minutes=(5,), channels=("push",), change_notices=False
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reminder_minutes": "10"}, "reminder_minutes"),
        ({"reminder_minutes": [10.5]}, "reminder_minutes"),
        ({"reminder_minutes": [True]}, "reminder_minutes"),
        ({"reminder_minutes": [-1]}, "reminder_minutes"),
        ({"reminder_minutes": [40_321]}, "reminder_minutes"),
        ({"reminder_minutes": [1, 2, 3, 4, 5, 6]}, "reminder_minutes"),
        ({"channels": "email"}, "channels"),
        ({"channels": ["sms"]}, "channels"),
        ({"channels": ["email", "email"]}, "channels"),
        ({"channels": ["webhook"]}, "webhook_url"),
        ({"webhook_url": "http://hooks.example.com/x"}, "webhook_url"),
        ({"webhook_url": "https://127.0.0.1/x"}, "webhook_url"),
        ({"webhook_url": "https://localhost/x"}, "webhook_url"),
        ({"webhook_url": "https://[::1]/x"}, "webhook_url"),
        ({"webhook_url": "https://169.254.169.254/latest"}, "webhook_url"),
        ({"webhook_url": "https://user:pw@hooks.example.com/"}, "webhook_url"),
        ({"webhook_url": 5}, "webhook_url"),
        ({"change_notices": "yes"}, "change_notices"),
        ({"quiet_hours": "22-07"}, "quiet_hours"),
        ({"quiet_hours": {"start": "22:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "24:00", "end": "07:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "UTC"}}, "quiet_hours"),
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}},
            "quiet_hours",
        ),
    ],
)
def test_bad_values_name_their_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_update(body, DEFAULT_PREFERENCES)
    assert caught.value.field == field


def test_lead_times_default_to_the_events_own_reminders() -> None:
    assert DEFAULT_PREFERENCES.lead_times({"use_default": True, "overrides": []}) == (10,)
    assert DEFAULT_PREFERENCES.lead_times(None) == (10,)
    overrides = {"use_default": False, "overrides": [[30, "popup"], [5, "email"], [30, "email"]]}
    assert DEFAULT_PREFERENCES.lead_times(overrides) == (5, 30)
    assert DEFAULT_PREFERENCES.lead_times({"use_default": False, "overrides": []}) == ()
    assert Preferences(reminder_minutes=(15,)).lead_times(overrides) == (15,)


def test_quiet_hours_across_midnight_in_the_users_zone() -> None:
    quiet = QuietHours(time(22), time(7))
    zone = "Europe/Berlin"  # UTC+1 in January

    assert quiet.contains(datetime(2026, 1, 10, 21, 30, tzinfo=UTC), zone)  # 22:30 local
    assert quiet.contains(datetime(2026, 1, 11, 5, 59, tzinfo=UTC), zone)  # 06:59 local
    assert not quiet.contains(datetime(2026, 1, 11, 6, 0, tzinfo=UTC), zone)  # 07:00 local
    assert quiet.end_after(datetime(2026, 1, 10, 21, 30, tzinfo=UTC), zone) == datetime(
        2026, 1, 11, 6, 0, tzinfo=UTC
    )


def test_quiet_hours_end_on_the_local_clock_after_a_dst_change() -> None:
    quiet = QuietHours(time(23), time(7), timezone="Europe/Berlin")
    # 23:30 CET on 28 March; the night's end is 07:00 CEST (05:00Z) on 29 March
    end = quiet.end_after(datetime(2026, 3, 28, 22, 30, tzinfo=UTC), "UTC")
    assert end == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)


def test_daytime_quiet_hours() -> None:
    quiet = QuietHours(time(12), time(13), timezone="UTC")
    assert quiet.contains(datetime(2026, 1, 1, 12, 30, tzinfo=UTC), "Asia/Tokyo")
    assert not quiet.contains(datetime(2026, 1, 1, 13, 0, tzinfo=UTC), "Asia/Tokyo")
