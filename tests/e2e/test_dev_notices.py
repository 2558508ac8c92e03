"""Notices in ``calsync dev``: email and webhooks are kept in the state folder instead of
being sent (there is no mail server, and webhooks to this machine are refused), listed by
``GET /dev/notices`` and named in the log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from calsync.notify.outgoing_webhooks import verify_signature
from tests.e2e.dev_process import DevProcess, bearer, eventually, free_port, sign_in

pytestmark = pytest.mark.e2e

ANN = "ann@example.com"
HOOK = "https://hooks.example.com/calsync"


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    run = DevProcess(tmp_path, port=free_port(), emulator_port=free_port())
    try:
        yield run.start()
    finally:
        run.close()


def kept(dev: DevProcess, token: str, **params: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{dev.base}/dev/notices", headers=bearer(token), params=params)
    assert answer.status_code == 200, answer.text
    notices: list[dict[str, Any]] = answer.json()["notices"]
    return notices


def test_an_invitation_is_kept_as_an_email_and_a_signed_webhook(dev: DevProcess) -> None:
    admin = dev.admin_token()
    # Given Ann, signed in, who wants notices by email and webhook
    ann = sign_in(dev.base, ANN).json()["token"]
    prefs = httpx.put(
        f"{dev.base}/me/preferences",
        headers=bearer(ann),
        json={"channels": ["email", "webhook"], "webhook_url": HOOK},
    )
    assert prefs.status_code == 200, prefs.text
    secret = prefs.json()["webhook_secret"]
    eventually(
        lambda: httpx.get(f"{dev.base}/calendars", headers=bearer(admin)).json()["calendars"],
        "the dev admin's calendars connected",
    )

    # When the admin invites her to an event
    created = httpx.post(
        f"{dev.base}/events",
        headers=bearer(admin),
        json={
            "title": "Planning",
            "start_time": "2026-12-01T09:00:00+01:00",
            "end_time": "2026-12-01T10:00:00+01:00",
            "timezone": "Europe/Berlin",
            "attendees": [ANN],
        },
    )
    assert created.status_code == 201, created.text

    # Then both notices are kept, listed for her, and named in the log
    notices = eventually(lambda: len(kept(dev, ann)) == 2 and kept(dev, ann), "two kept notices")
    by_channel = {notice["channel"]: notice for notice in notices}
    assert set(by_channel) == {"email", "webhook"}
    email = by_channel["email"]
    assert email["recipient"] == ANN
    assert ANN in email["message"]["to"]
    assert "Planning" in email["message"]["subject"]
    eml = message_from_bytes((dev.folder / "notices" / email["eml"]).read_bytes(), policy=default)
    assert eml["Subject"] == email["message"]["subject"]
    hook = by_channel["webhook"]["message"]
    assert hook["url"] == HOOK
    assert hook["body"]["event"]["title"] == "Planning"
    assert verify_signature(
        secret,
        timestamp=hook["headers"]["Calsync-Timestamp"],
        signature=hook["headers"]["Calsync-Signature"],
        body=hook["body_text"].encode(),
        now=datetime.now(UTC),
    )
    assert "dev sink: kept the email" in dev.output()
    # And an admin sees them too, among everyone's or as Ann's
    assert {n["id"] for n in kept(dev, admin)} >= {n["id"] for n in notices}
    me = httpx.get(f"{dev.base}/me", headers=bearer(ann)).json()
    assert {n["id"] for n in kept(dev, admin, user_id=me["id"])} == {n["id"] for n in notices}
