"""A sign-in that stores new tokens while a refresh of the revoked grant is refused
leaves the account and its tokens usable, on both databases.

Found by the multi-tenant simulation (seed 1449527753, embedded): after the sign-in the
user's account was ``active`` but their token row ``needs_reauth``, so every pull and
push of theirs failed until yet another sign-in. On SQLite the sign-in read the token
row outside any transaction (the driver runs a ``SELECT`` so, and SQLite drops
``FOR UPDATE``); the refresh committed its "needs re-authorisation" mark after that read;
the sign-in then set the status it had read ("valid") and the ORM left the unchanged
column out of its ``UPDATE``. A ``FOR UPDATE`` read now makes the transaction SQLite's one
writer (`calsync.store.db`), as the row lock does on PostgreSQL.

The interleaving is forced: Google holds the pull's refresh of the revoked grant while
the sign-in runs, and the sign-in, once it read the token row, goes on only when the
pull ended or waits for it. Two users, so that the other one is seen untouched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import event

from calsync.providers.errors import ProviderError
from calsync.sync.connect import connect_user
from calsync.sync.pull import pull_calendar
from tests.integration.sync.conftest import SyncStack
from tests.integration.sync.test_sign_in_after_revoke import (
    create,
    google_titles,
    hold_pull_at_refresh,
    run_jobs,
    sign_in,
    status_of,
)

pytestmark = pytest.mark.integration

ANN, BEN = "ann@example.com", "ben@example.com"


@contextmanager
def refusal_after_the_token_read(stack: SyncStack, pulling: Future[Any]) -> Iterator[list[str]]:
    """While inside: the first read of a token row (the sign-in's) waits until `pulling`
    ended or Google refused its refresh half a second ago (it then waits for the
    reader's transaction), at most 8 s (SQLite's busy timeout is 10 s). Yields a list
    that says whether that read happened."""
    seen: list[str] = []

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if seen or "FROM oauth_tokens" not in statement:
            return
        seen.append(statement)
        refused_at: float | None = None
        deadline = time.monotonic() + 8
        while not pulling.done() and time.monotonic() < deadline:
            if refused_at is None and any(
                r["status"] == 400 for r in stack.control.requests(path_regex="^/token$")
            ):
                refused_at = time.monotonic()
            if refused_at is not None and time.monotonic() - refused_at > 0.5:
                break
            time.sleep(0.02)

    engine = stack.services.engine
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine, "after_cursor_execute", after)


def test_a_refusal_committed_between_the_sign_ins_read_and_write_does_not_flag_the_new_tokens(
    hand_stack: SyncStack,
) -> None:
    stack = hand_stack
    # Given Ann and Ben, connected and pulled; Ann signed in through /auth/google before
    ben = stack.connect_pulled(BEN)
    ann = stack.connect_pulled(ANN)
    ann_calendar = stack.calendar_id(ann, ANN)
    sign_in(stack, ANN)
    # When Ann revokes calsync's access at Google and writes through the API (accepted)
    assert stack.control.revoke_user(ANN) >= 1
    waiting = create(stack, ann, "written while revoked", 2)
    ben_event = create(stack, ben, "ben's meeting", 3)
    # and signs in again while a pull's refresh of the old grant is refused, the refusal
    # arriving after the sign-in read her token row
    pulling = hold_pull_at_refresh(stack, ann_calendar, ANN)
    with refusal_after_the_token_read(stack, pulling) as seen:
        signed = sign_in(stack, ANN)
    assert signed["user"]["id"] == str(ann)
    assert seen, "the sign-in read the token row"
    with suppress(ProviderError):
        pulling.result(timeout=30)
    # Then her account is active and the tokens she just granted are used
    assert status_of(stack, ann) == "active"
    run_jobs(stack, connect_user(stack.services, ann))
    assert pull_calendar(stack.services, ann_calendar).status == "ok"
    # and her write reached Google once; Ben's too, and Ben was never touched
    assert google_titles(stack, ANN)[waiting["title"]] == 1
    assert stack.local_events(ANN) == stack.remote_events(ANN, ANN)
    assert status_of(stack, ben) == "active"
    assert google_titles(stack, BEN)[ben_event["title"]] == 1
    with httpx.Client(base_url=stack.url) as client:
        answer = client.post("/sync", headers=stack.headers(ann))
    assert answer.status_code == 202, answer.text
