"""`OrjsonModel` decodes every answer to what google-api-python-client's `JsonModel` gives."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from googleapiclient.model import JsonModel
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.providers.google.api import OrjsonModel

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _same(left: Any, right: Any) -> bool:
    """Equal, with the same types all the way down (1 and 1.0 differ here)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)
    return bool(left == right)


@settings(max_examples=300, deadline=None)
@given(document=JSON, ascii_only=st.booleans())
def test_valid_json_decodes_alike(document: Any, ascii_only: bool) -> None:
    content = json.dumps(document, ensure_ascii=ascii_only).encode()
    assert _same(OrjsonModel().deserialize(content), JsonModel().deserialize(content))


@pytest.mark.parametrize(
    "content",
    [
        b'{"a": NaN, "b": Infinity}',
        b'{"surrogate": "\\ud800"}',
        b'{"big": 123456789012345678901234567890}',
        b'{"big": -9223372036854775809, "fine": 9223372036854775807}',
        b'{"huge": 1e400, "tiny": 1e-400}',
        b'{"etag": "\\"1234567890123456789012\\""}',
        b'{"dup": 1, "dup": 2}',
        b"not json",
        b"",
        '{"text": "already decoded"}',
        "\ufeff{}".encode(),
        b'{"data": {"inner": 1}}',
    ],
)
def test_what_orjson_refuses_goes_to_the_standard_model(content: bytes | str) -> None:
    assert _same(OrjsonModel().deserialize(content), JsonModel().deserialize(content))
    wrapped = OrjsonModel(data_wrapper=True).deserialize(content)
    assert _same(wrapped, JsonModel(data_wrapper=True).deserialize(content))


def test_invalid_utf8_fails_alike() -> None:
    with pytest.raises(UnicodeDecodeError):
        JsonModel().deserialize(b'{"a": "\xff"}')
    with pytest.raises(UnicodeDecodeError):
        OrjsonModel().deserialize(b'{"a": "\xff"}')
