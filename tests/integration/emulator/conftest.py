"""Fixtures for the emulator's tests.

By default every test runs against an in-process emulator (``EmulatorServer`` on a free
port, reset before each test). Setting ``CALSYNC_TEST_GOOGLE_API`` (for example to
``https://www.googleapis.com``) points the same tests at the real Google: the acting
account's token then comes from ``CALSYNC_TEST_GOOGLE_ACCESS_TOKEN``; tests work in a
secondary calendar they create and delete; tests that need the emulator's control API
(extra users, faults, the clock, local push receivers) are skipped with the reason.
Assertions only use what Google's API shows (statuses, reasons, resources).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl, PushReceiver, build_calendar_service

GOOGLE_API = os.environ.get("CALSYNC_TEST_GOOGLE_API")
NEEDS_EMULATOR = (
    "needs the emulator control API (set up users, faults, clock); real Google has none"
)


@dataclass(frozen=True)
class Target:
    """Where the API lives, and the control API when it is the emulator."""

    base_url: str
    control: EmulatorControl | None
    server: EmulatorServer | None


@dataclass(frozen=True)
class Account:
    email: str
    access_token: str
    refresh_token: str | None
    service: Any  # googleapiclient Resource


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    if GOOGLE_API:
        yield Target(GOOGLE_API.rstrip("/"), None, None)
        return
    with EmulatorServer() as server, EmulatorControl(server.url) as control:
        yield Target(server.url, control, server)


@pytest.fixture(autouse=True)
def _fresh_emulator(target: Target) -> None:
    if target.control is not None:
        target.control.reset()


@pytest.fixture
def control(target: Target) -> EmulatorControl:
    """The control API; skips the test when pointed at the real Google."""
    if target.control is None:
        pytest.skip(reason=NEEDS_EMULATOR)
    return target.control


@pytest.fixture
def emulator(target: Target) -> EmulatorServer:
    """The running in-process emulator (reset for this test); skips on real Google."""
    if target.server is None:
        pytest.skip(reason=NEEDS_EMULATOR)
    return target.server


def make_account(target: Target, email: str | None = None, **extra: Any) -> Account:
    """A user acting through the real client: a new emulator user, or the Google one."""
    if target.control is None:
        token = os.environ.get("CALSYNC_TEST_GOOGLE_ACCESS_TOKEN")
        if not token or email is not None or extra:
            pytest.skip(reason=NEEDS_EMULATOR)
        service = build_calendar_service(target.base_url, token)
        primary = service.calendars().get(calendarId="primary").execute()
        return Account(primary["id"], token, None, service)
    created = target.control.create_user(email or f"u{uuid.uuid4().hex[:10]}@example.com", **extra)
    service = build_calendar_service(
        target.base_url, created["access_token"], refresh_token=created["refresh_token"]
    )
    return Account(created["email"], created["access_token"], created["refresh_token"], service)


@pytest.fixture
def new_account(target: Target) -> Iterator[Callable[..., Account]]:
    """Make more accounts (``new_account(email=..., calendars=[...])``); closed afterwards."""
    made: list[Account] = []

    def factory(email: str | None = None, **extra: Any) -> Account:
        made.append(make_account(target, email, **extra))
        return made[-1]

    yield factory
    for each in made:
        each.service.close()


@pytest.fixture
def account(new_account: Callable[..., Account]) -> Account:
    return new_account()


@pytest.fixture
def calendar_id(account: Account) -> Iterator[str]:
    """A fresh secondary calendar owned by ``account``, deleted afterwards."""
    created = (
        account.service.calendars().insert(body={"summary": "calsync emulator test"}).execute()
    )
    yield created["id"]
    with contextlib.suppress(HttpError):  # best-effort clean-up on the real Google
        account.service.calendars().delete(calendarId=created["id"]).execute()


@pytest.fixture
def new_receiver() -> Iterator[Callable[..., PushReceiver]]:
    """Start more push receivers (``new_receiver(status=500)``); stopped afterwards."""
    started: list[PushReceiver] = []

    def factory(status: int = 200) -> PushReceiver:
        started.append(PushReceiver(status=status).start())
        return started[-1]

    yield factory
    for each in started:
        each.stop()


@pytest.fixture
def receiver(control: EmulatorControl, new_receiver: Callable[..., PushReceiver]) -> PushReceiver:
    """A local push receiver (Google cannot reach 127.0.0.1: emulator only)."""
    return new_receiver()


def timed(day: str, hour: int, *, minutes: int = 60, zone: str | None = None) -> dict[str, Any]:
    """start/end fields of a timed event on ``day`` at ``hour`` (UTC unless ``zone``)."""
    start_minutes = hour * 60
    end_minutes = start_minutes + minutes

    def at(total: int) -> dict[str, Any]:
        value = f"{day}T{total // 60:02d}:{total % 60:02d}:00"
        if zone is None:
            return {"dateTime": value + "Z"}
        return {"dateTime": value, "timeZone": zone}

    return {"start": at(start_minutes), "end": at(end_minutes)}
