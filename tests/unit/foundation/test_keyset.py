"""Keyset cursors: what `encode` makes decodes back; anything else is a ValueError."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from calsync.store import keyset


def test_a_position_survives_the_round_trip_as_the_same_instant() -> None:
    at = datetime(2026, 11, 21, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    decoded_at, key = keyset.decode(keyset.encode(at, "abc_20261121"))
    assert decoded_at == at
    assert decoded_at.tzinfo is not None
    assert key == "abc_20261121"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "%%%",
        _b64("not json"),
        _b64('{"a": 1}'),
        _b64('["2026-11-21T10:00:00", "naive"]'),
        _b64('["2026-11-21T10:00:00+00:00", 7]'),
        _b64('["yesterday", "x"]'),
        _b64('["2026-11-21T10:00:00+00:00"]'),
    ],
)
def test_anything_encode_did_not_make_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        keyset.decode(text)


def test_cursors_are_url_safe() -> None:
    text = keyset.encode(datetime(2026, 1, 1, tzinfo=UTC), "?&/+=" * 5)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
