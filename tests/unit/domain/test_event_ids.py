"""The provider id calsync gives the events it creates (decision HE3): pure, no I/O."""

from __future__ import annotations

import re
import uuid

from calsync.domain.event_ids import client_event_id
from calsync.providers.google.ids import (
    google_event_id,
    is_valid_client_event_id,
    local_id_from_google_event_id,
)


def test_the_id_is_the_base32hex_of_the_local_id_and_google_reads_it_back() -> None:
    for local_id in (
        uuid.UUID(int=0),
        uuid.UUID(int=2**128 - 1),
        *(uuid.uuid4() for _ in range(50)),
    ):
        chosen = client_event_id(local_id)
        assert re.fullmatch(r"[a-v0-9]{26}", chosen)
        assert is_valid_client_event_id(chosen)
        assert google_event_id(local_id) == chosen
        assert local_id_from_google_event_id(chosen) == local_id


def test_the_id_is_deterministic_and_distinct_per_event() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert client_event_id(first) == client_event_id(uuid.UUID(str(first)))
    assert client_event_id(first) != client_event_id(second)
    # a known value, so that a change of the rule (which would orphan every event
    # already on Google) cannot pass unnoticed
    assert client_event_id(uuid.UUID("12345678-1234-5678-1234-567812345678")) == (
        "28q5cu0i6hb7g4hkaps14d2mf0"
    )
