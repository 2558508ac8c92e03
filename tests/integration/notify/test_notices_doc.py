"""docs/notices.md agrees with the API: its ``PUT /me/preferences`` example, sent as
written, is accepted on both databases, and the secret it says is read-only is."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.events.conftest import EventsApp, any_app

__all__ = ["any_app"]  # the fixture, shared with the events tests

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[3] / "docs" / "notices.md"


def _put_example() -> dict[str, Any]:
    text = DOC.read_text()
    section = text[text.index("`PUT /me/preferences` takes") :]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    example: dict[str, Any] = json.loads(block.group(1))
    return example


def test_the_documented_put_example_is_accepted_as_written(any_app: EventsApp) -> None:
    user = any_app.local_user("pat@example.com")
    example = _put_example()
    answer = any_app.client.put("/me/preferences", json=example, headers=user.headers)
    assert answer.status_code == 200, answer.text
    saved = answer.json()
    assert {k: saved[k] for k in example} == example
    assert saved["webhook_secret"]  # made by calsync, shown to its owner
    # And sending the secret back, unchanged, is the documented 422
    again = any_app.client.put(
        "/me/preferences", json={"webhook_secret": saved["webhook_secret"]}, headers=user.headers
    )
    assert again.status_code == 422
    assert again.json()["error"]["details"] == [
        {"field": "webhook_secret", "issue": "read_only", "message": "this field is set by calsync"}
    ]
