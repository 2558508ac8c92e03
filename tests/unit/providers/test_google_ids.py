"""Deterministic Google event ids from local UUIDs."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calsync.providers.google.ids import (
    google_event_id,
    is_valid_client_event_id,
    local_id_from_google_event_id,
)


def test_known_value() -> None:
    assert google_event_id(uuid.UUID(int=0)) == "0" * 26
    assert google_event_id(uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff")) == "v" * 25 + "s"


@given(st.uuids())
def test_round_trip_and_google_alphabet(local_id: uuid.UUID) -> None:
    event_id = google_event_id(local_id)
    assert len(event_id) == 26
    assert set(event_id) <= set("0123456789abcdefghijklmnopqrstuv")
    assert is_valid_client_event_id(event_id)
    assert local_id_from_google_event_id(event_id) == local_id


@given(st.uuids(), st.uuids())
def test_distinct_uuids_give_distinct_ids(a: uuid.UUID, b: uuid.UUID) -> None:
    assert (google_event_id(a) == google_event_id(b)) == (a == b)


@pytest.mark.parametrize(
    "event_id",
    [
        "",
        "abc",  # too short for Google and for us
        "0" * 25,
        "0" * 27,
        "W" * 26,  # upper case is not Google's alphabet
        "w" * 26,  # outside a-v
        "v" * 26,  # trailing bits not zero: no UUID encodes to this
        "0" * 25 + "\n",
        "_20240101T000000Z" + "0" * 9,
    ],
)
def test_foreign_ids_are_not_ours(event_id: str) -> None:
    with pytest.raises(ValueError, match="not a calsync event id"):
        local_id_from_google_event_id(event_id)


@pytest.mark.parametrize(
    ("event_id", "valid"),
    [
        ("abcde", True),
        ("abcd", False),
        ("a" * 1024, True),
        ("a" * 1025, False),
        ("abcdw", False),
        ("ABCDE", False),
        ("abc_20240101", False),
        ("abcde\n", False),
    ],
)
def test_client_id_rule(event_id: str, valid: bool) -> None:
    assert is_valid_client_event_id(event_id) is valid
