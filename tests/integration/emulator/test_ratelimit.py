"""Per-user and per-project rate limits (off by default), by the emulator clock."""

from __future__ import annotations

from collections.abc import Callable

from calsync.emulator.testing import EmulatorControl
from tests.integration.emulator.conftest import Account
from tests.integration.emulator.helpers import google_error


def test_no_limit_by_default(account: Account) -> None:
    for _ in range(30):
        account.service.calendarList().list().execute()


def test_per_user_limit_answers_403_user_rate_limit_exceeded(
    control: EmulatorControl, new_account: Callable[..., Account]
) -> None:
    alice, bob = new_account(), new_account()
    control.configure(rate_limits={"per_user_per_minute": 3})
    for _ in range(3):
        alice.service.calendarList().list().execute()
    status, reason, body = google_error(alice.service.calendarList().list().execute)
    assert (status, reason) == (403, "userRateLimitExceeded")
    assert body["error"]["errors"][0]["domain"] == "usageLimits"
    assert bob.service.calendarList().list().execute()["items"]

    control.advance_clock(61)
    assert alice.service.calendarList().list().execute()["items"]


def test_per_project_limit_can_answer_429(
    control: EmulatorControl, new_account: Callable[..., Account]
) -> None:
    alice, bob = new_account(), new_account()
    control.configure(rate_limits={"per_project_per_minute": 2, "status": 429})
    alice.service.calendarList().list().execute()
    bob.service.calendarList().list().execute()
    assert google_error(alice.service.calendarList().list().execute)[:2] == (
        429,
        "rateLimitExceeded",
    )
    assert google_error(bob.service.calendarList().list().execute)[:2] == (
        429,
        "rateLimitExceeded",
    )
