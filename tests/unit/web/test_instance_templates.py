"""A master's stored template (calsync.events.templates, decision A2) gives each generated
instance the same bytes as rendering its document: for any document and values,
including strings that hold the template's own markers, zero bytes and other control
characters, and for templates stored before A2 (plain JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from calsync.events.templates import INSTANCE_FIELDS, instance_body, stored_template
from calsync.events.views import json_bytes

MARKER = "\x00calsync-instance-field-2\x00"
TEXT = st.text() | st.sampled_from([MARKER, f"a{MARKER}b", "\x00", "\x002", '"\\u0000'])
VALUES = st.tuples(TEXT, TEXT, TEXT, TEXT, TEXT)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=12,
)


def documents() -> st.SearchStrategy[dict[str, Any]]:
    """Instance documents: the API's fields (some of the five maybe missing, in any
    order) and others with any JSON values."""
    fields = st.lists(
        st.sampled_from((*INSTANCE_FIELDS, "title", "description", "attendees", "metadata")),
        unique=True,
    )
    return fields.flatmap(
        lambda names: st.fixed_dictionaries({name: JSON for name in names})
    ) | st.dictionaries(TEXT, JSON, max_size=5)


def rendered(document: dict[str, Any], values: tuple[str, str, str, str, str]) -> bytes:
    """What the page must send: the instance's document rendered (`instance_json`'s
    merge, then `json_bytes`)."""
    return json_bytes({**document, **dict(zip(INSTANCE_FIELDS, values, strict=True))})


@given(document=documents(), values=VALUES)
def test_an_instance_from_the_stored_template_is_its_rendered_document(
    document: dict[str, Any], values: tuple[str, str, str, str, str]
) -> None:
    assert instance_body(stored_template(document), values) == rendered(document, values)


@given(document=documents(), values=VALUES)
def test_a_template_stored_as_plain_json_gives_the_same_bytes(
    document: dict[str, Any], values: tuple[str, str, str, str, str]
) -> None:
    assert instance_body(json_bytes(document), values) == rendered(document, values)


def test_a_template_is_cut_at_the_five_fields_unless_a_value_holds_a_marker() -> None:
    document = {"id": "x", "title": "t", "start_time": "s", "google_event_id": "g"}
    template = stored_template(document)
    assert template.count(b"\x00") == len(INSTANCE_FIELDS)
    assert b'"title":"t"' in template
    hostile = document | {"title": MARKER}
    assert stored_template(hostile) == json_bytes(hostile)
    assert orjson.loads(stored_template(hostile)) == hostile
