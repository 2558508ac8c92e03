"""The inbound path's measurement (tests/perf/inbound_path.py) measures a real notification.

Its driver gives one Google notification to the intake and runs the pull it queued; the
count it prints is only worth something if that notification went all the way: answered
202, one pull run, one change notice recorded, and every stage ran calsync code.
"""

from __future__ import annotations

import pytest

from calsync.config import Settings
from tests.conftest import FakeGoogle
from tests.perf.inbound_path import STAGES, UPKEEP, drive, report

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "production"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """SQLite with the in-process broker, and PostgreSQL with Redis."""
    found: Settings = request.getfixturevalue(f"{request.param}_settings")
    return found


def test_the_measured_notification_ends_in_a_change_notice(
    settings: Settings, fake_google: FakeGoogle
) -> None:
    # When the driver gives Carol's change notification to the intake and runs its pull
    driven = drive(settings, fake_google.url, fake_google.control)

    # Then the intake recorded it, the pull ran, and Alice has her change notice
    assert (driven.status, driven.queued, driven.notices) == (202, "sync_calendar", 1)
    # and every stage ran, each through the module that starts it
    figures = report(driven)
    ran = {stage: set(data["per_module"]) for stage, data in figures["stages"].items()}
    assert set(STAGES) <= set(ran), sorted(ran)
    assert "calsync/sync/pull.py" in ran["pull+listing"]
    assert "calsync/sync/reconcile.py" in ran["reconcile+store"]
    assert "calsync/notify/changes.py" in ran["notice"]
    assert figures["path"]["statements"] == sum(figures["path"]["per_module"].values())
    # the read model's hooks are counted apart, never in the path
    assert not set(figures["path"]["per_module"]) & {"calsync/events/upkeep.py"}
    assert UPKEEP in ran
