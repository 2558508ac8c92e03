"""A series master's stored template: the JSON of its generated instances with the five
fields an instance has of its own cut out, so that a page makes each instance's JSON by
joining bytes (decision A2).

`stored_template` renders it when the read model stores a master's document
(``event_documents.body``); `instance_body` puts an instance's values in. The template is
`json_bytes` of the instance document with the value of each of `INSTANCE_FIELDS`
(quotes included) replaced by a gap: a zero byte and the field's number (one ASCII digit).
orjson never writes a zero byte (it escapes control characters in strings), so the gaps
are found by one split and cannot be confused with the document's text.

A template without gaps is plain JSON: what `stored_template` stores when a value of the
document happens to hold the text of a marker it renders with, and what documents
stored before decision A2 are. `instance_body` parses those and merges the values in:
the same bytes, only slower.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from calsync.events.views import json_bytes

__all__ = ["INSTANCE_FIELDS", "instance_body", "instance_body_encoded", "stored_template"]

INSTANCE_FIELDS: Final = ("id", "original_start_time", "start_time", "end_time", "google_event_id")
"""The fields a generated instance's document has of its own (`instance_json`), in the
order `instance_body` takes their values."""

_GAP: Final = b"\x00"
_ZERO: Final = ord("0")
_MARKERS: Final = tuple(f"\x00calsync-instance-field-{n}\x00" for n in range(len(INSTANCE_FIELDS)))


def stored_template(document: dict[str, Any]) -> bytes:
    """The stored template of a master whose generated instances render as `document`
    (`event_json` of one of them): see the module docstring."""
    rendered = json_bytes({**document, **dict(zip(INSTANCE_FIELDS, _MARKERS, strict=True))})
    template = rendered
    for slot, marker in enumerate(_MARKERS):
        encoded = orjson.dumps(marker)
        if rendered.count(encoded) != 1:
            return json_bytes(document)  # a value holds the marker's text: plain JSON
        template = template.replace(encoded, _GAP + str(slot).encode())
    return template


def instance_body(template: bytes, values: tuple[str, str, str, str, str]) -> bytes:
    """`json_bytes` of the instance document `template` stands for, with `values` (of
    `INSTANCE_FIELDS`, in that order) as those fields."""
    encoded = (
        orjson.dumps(values[0]),
        orjson.dumps(values[1]),
        orjson.dumps(values[2]),
        orjson.dumps(values[3]),
        orjson.dumps(values[4]),
    )
    return instance_body_encoded(template, encoded)


def instance_body_encoded(
    template: bytes, encoded: tuple[bytes, bytes, bytes, bytes, bytes]
) -> bytes:
    """`instance_body` with its values given as their JSON (each what ``orjson.dumps``
    makes of a string: a caller that has a value's JSON without its text, such as an
    instant orjson rendered, saves making the text; decision IQ2)."""
    parts = template.split(_GAP)
    if len(parts) == 1:  # plain JSON
        values = [orjson.loads(value) for value in encoded]
        return json_bytes(
            {**orjson.loads(template), **dict(zip(INSTANCE_FIELDS, values, strict=True))}
        )
    pieces = [parts[0]]
    for part in parts[1:]:
        pieces.append(encoded[part[0] - _ZERO])
        pieces.append(part[1:])
    return b"".join(pieces)
