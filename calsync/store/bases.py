"""How ``events.base_version`` says that a row is its own base (decision IA1).

``base_version`` holds the last version both sides agreed on, the base of the three-way
merge: a document of `calsync.domain.codec.event_to_document`, or ``NULL`` when Google
has no version (a local event never pushed). A pull stores every row it writes as Google
listed it, so for such a row the agreed version is the row itself (its columns and its
attendee rows): storing it again as a ~800-byte document was most of PostgreSQL's work
in a full sync. Such a row stores `row_base()`, the empty document, which
`event_to_document` never makes.

Readers derive the base from the row (`calsync.store.events.stored_event`, the pull's
merge and audit). Every write that makes a row differ from its base first stores the
base it had (`calsync.store.event_changes.save_local`, the manual merge of a pull) or
stores a new base (the push's `record_pushed`, `record_merged`, the pull's merges).
A soft delete (`mark_deleted`) changes no column the base is made of, so it keeps a row
that is its own base as it is. The base derived from a row carries what the row gives:
its ``calsync_id`` is the row's id (Google's copy may carry none, or another), a field
no reader of a base reads (IA2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calsync.domain.codec import event_from_document, event_to_document
from calsync.domain.models import Event

__all__ = ["base_document", "base_of", "row_base", "row_is_base"]


def base_document(event: Event) -> dict[str, Any]:
    """What ``events.base_version`` stores for `event` (never the empty document)."""
    return event_to_document(event)


def row_base() -> dict[str, Any]:
    """The value to store in ``base_version`` for a row that is its own base."""
    return {}


def row_is_base(document: Mapping[str, Any] | None) -> bool:
    """Whether a stored ``base_version`` says "the row is its own base"."""
    return document is not None and not document


def base_of(document: dict[str, Any] | None, event: Event) -> tuple[Event | None, bool]:
    """The base a row stores as `document` (its ``base_version``; `None` when not read),
    `event` being the row's event, and whether the row is its own base."""
    if row_is_base(document):
        return event, True
    return (event_from_document(document) if document else None), False
