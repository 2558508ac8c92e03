"""The contract every list route keeps (docs/api.md, "Lists"): one place reads ``limit``,
``cursor`` and the set of known parameters, so the lists cannot drift apart again.

- ``limit``: a whole number from 1 to the list's maximum; anything else is 422 naming
  ``limit`` (never silently capped).
- ``cursor``: the ``next_cursor`` of the previous page of *the same list with the same
  filters* (`list_scope`); anything else - junk, a cursor of another list, another user or
  other filters, or one of an older format - is 422 naming ``cursor``.
- an unknown parameter, or a value outside an enumeration, is 422 naming it.

Cursors are `calsync.store.keyset` positions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

from starlette.datastructures import QueryParams

from calsync.store import keyset
from calsync.web.errors import APIError

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "invalid",
    "list_scope",
    "next_cursor",
    "one_of",
    "page_size",
    "read_cursor",
    "read_name_cursor",
    "reject_unknown_params",
]

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
#: The paging parameters every list takes besides its filters.
PAGING: Final = frozenset({"limit", "cursor"})


def invalid(field: str, message: str, *, issue: str = "invalid") -> APIError:
    """422 naming `field`."""
    return APIError(
        422,
        f"{field} {message}",
        details=[{"field": field, "issue": issue, "message": message}],
    )


def page_size(
    params: Mapping[str, str], *, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE
) -> int:
    """The ``limit`` query parameter, between 1 and `maximum`.

    Raises:
        APIError: 422 naming ``limit`` for anything else (an empty text included).
    """
    raw = params.get("limit")
    if not raw:  # absent or empty: the default, as for every filter
        return default
    # isdigit alone also takes "³" and other digits int() refuses
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise invalid("limit", f"must be a whole number from 1 to {maximum}")
    return int(raw)


def reject_unknown_params(params: QueryParams | Mapping[str, str], known: Iterable[str]) -> None:
    """Raises APIError 422 naming every parameter that is not in `known` or `PAGING`."""
    allowed = PAGING | frozenset(known)
    unknown = sorted(set(params.keys()) - allowed)
    if unknown:
        raise APIError(
            422,
            f"unknown parameters: {', '.join(unknown)}",
            details=[
                {"field": name, "issue": "unknown", "message": "unknown parameter"}
                for name in unknown
            ],
        )


def one_of(params: Mapping[str, str], field: str, choices: Iterable[str]) -> str | None:
    """The value of `field` when it is one of `choices`; ``None`` when absent.

    Raises:
        APIError: 422 naming `field` for any other value (a filter no row could match is
            a mistake to report, not an empty page).
    """
    raw = params.get(field)
    if raw is None:
        return None
    allowed = sorted(choices)
    if raw not in allowed:
        raise invalid(field, f"must be one of {', '.join(allowed)}")
    return raw


def list_scope(name: str, owner: uuid.UUID | None, params: QueryParams) -> str:
    """What a cursor of list `name` is bound to: whose rows it reads and every filter of
    the query (the paging parameters aside)."""
    filters = sorted((k, v) for k, v in params.multi_items() if k not in PAGING and v)
    return json.dumps([name, str(owner) if owner else None, filters])


def read_cursor(params: Mapping[str, str], scope: str) -> tuple[datetime, str] | None:
    """The position of the ``cursor`` parameter, made for `scope`; ``None`` when absent.

    Raises:
        APIError: 422 naming ``cursor`` for anything `next_cursor` did not make for `scope`.
    """
    text = params.get("cursor")
    if not text:  # absent or empty: the first page
        return None
    try:
        return keyset.decode(text, scope=scope)
    except ValueError as err:
        raise invalid("cursor", _cursor_message(err)) from None


def read_name_cursor(params: Mapping[str, str], scope: str) -> str | None:
    """Like `read_cursor`, for lists ordered by a unique name."""
    text = params.get("cursor")
    if not text:
        return None
    try:
        return keyset.decode_name(text, scope=scope)
    except ValueError as err:
        raise invalid("cursor", _cursor_message(err)) from None


def next_cursor(scope: str, at: datetime, key: str) -> str:
    """The cursor of the position (`at`, `key`) in the list `scope`."""
    return keyset.encode(at, key, scope=scope)


def _cursor_message(err: ValueError) -> str:
    return f"is not the next_cursor of this list with these filters ({err})"
