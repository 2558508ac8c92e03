"""Idempotency keys: the first answer to a POST, replayed when the same key comes again.

The answer is saved in the transaction that made the change, so a saved answer always
describes a committed change and a rolled-back change leaves no answer behind. Two
concurrent requests with one key race on the primary key (user, key): the loser's
transaction fails and it replays the winner's answer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from calsync.store.tables import IdempotencyKey

__all__ = ["SavedAnswer", "find", "request_fingerprint", "save"]

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class SavedAnswer:
    """A stored first answer; `request_hash` identifies the body it answered."""

    request_hash: str
    status_code: int
    body: dict[str, Any]


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """A hash of what a request asks for: same method, path and JSON value, same hash."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def find(session: Session, user_id: uuid.UUID, key: str) -> SavedAnswer | None:
    """The answer saved for the user's `key`, or `None`."""
    row = session.get(IdempotencyKey, (user_id, key))
    if row is None:
        return None
    return SavedAnswer(row.request_hash, row.status_code, row.response_body)


def save(
    session: Session,
    *,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    status_code: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    """Save the first answer for the user's `key` (flushed now, so a duplicate fails here)."""
    session.add(
        IdempotencyKey(
            user_id=user_id,
            key=key,
            request_hash=request_hash,
            status_code=status_code,
            response_body=body,
            created_at=now,
        )
    )
    session.flush()
