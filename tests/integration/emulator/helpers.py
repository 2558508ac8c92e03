"""Small assertions shared by the emulator tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from googleapiclient.errors import HttpError


def google_error(call: Callable[[], Any]) -> tuple[int, str, dict[str, Any]]:
    """Run a client call that must fail; (status, first reason, error body)."""
    with pytest.raises(HttpError) as caught:
        call()
    body = json.loads(caught.value.content)
    error = body["error"]
    assert error["code"] == caught.value.resp.status
    assert isinstance(error["message"], str)
    assert error["message"]
    return caught.value.resp.status, error["errors"][0]["reason"], body


def list_all(
    service: Any, calendar_id: str, **params: Any
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow events.list pages to the end: (items, nextSyncToken, number of pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    token = None
    while True:
        page = service.events().list(calendarId=calendar_id, pageToken=token, **params).execute()
        pages += 1
        items.extend(page.get("items", []))
        token = page.get("nextPageToken")
        if token is None:
            return items, page["nextSyncToken"], pages
        assert "nextSyncToken" not in page
