"""The Redis broker's consumers poll an empty queue less often right after a message
(`calsync.queue.PacedRedisBroker`, decisions IW): each poll is a Lua script and a slice
of the worker's CPU, and Dramatiq's own backoff started again at 5-10 ms after every
message. Both databases (each with the Redis broker), three users, the real worker
threads and API.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import httpx2 as httpx
import pytest
import redis
import sqlalchemy as sa
from dramatiq import Message

from calsync.queue import FIRST_POLL_MISSES, PacedRedisBroker
from calsync.store.tables import Event as EventRow
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import (
    SyncStack,
    migrated,
    running_stack,
    sync_settings,
    wait_until,
)

pytestmark = pytest.mark.integration


class Fetches:
    """The broker's ``fetch`` scripts on one queue: when each was sent, and whether it
    brought messages."""

    def __init__(self, stack: SyncStack, queue: str) -> None:
        self.seen: list[tuple[float, bool]] = []
        self.lock = threading.Lock()
        script = stack.services.broker.scripts["dispatch"]  # type: ignore[attr-defined]

        def counted(args: list[Any], keys: list[Any]) -> Any:
            sent = time.monotonic()
            found = script(args=args, keys=keys)
            if args[0] == "fetch" and args[2] == queue:
                with self.lock:
                    self.seen.append((sent, bool(found)))
            return found

        stack.services.broker.scripts["dispatch"] = counted  # type: ignore[attr-defined]

    def after_each_message(self, window: float) -> list[int]:
        """For each fetch that brought messages, how many fetches followed it within
        `window` seconds."""
        with self.lock:
            seen = list(self.seen)
        return [sum(start < t <= start + window for t, _ in seen) for start, found in seen if found]


@pytest.fixture(params=["sqlite", "postgresql"])
def redis_stack(
    request: pytest.FixtureRequest, fake_google: FakeGoogle, redis_url: str
) -> Iterator[SyncStack]:
    """The whole stack with Dramatiq's Redis broker on each database."""
    name = "embedded" if request.param == "sqlite" else "production"
    settings = migrated(request.getfixturevalue(f"{name}_settings"))
    settings = dataclasses.replace(settings, redis_url=redis_url)
    yield from running_stack(sync_settings(settings, fake_google), fake_google, threads=2)


def create(stack: SyncStack, user_id: Any, title: str, hours: int) -> str:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1, hours=hours)
    body = {
        "title": title,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=30)).isoformat(),
    }
    answer = httpx.post(f"{stack.url}/events", json=body, headers=stack.headers(user_id))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def synced(stack: SyncStack, ids: list[str]) -> bool:
    with stack.services.sessions() as session:
        states = session.scalars(
            sa.select(EventRow.sync_state).where(EventRow.id.in_([uuid.UUID(i) for i in ids]))
        ).all()
    return len(states) == len(ids) and all(s == "synced" for s in states)


def on_google(stack: SyncStack, email: str, text: str) -> list[str]:
    """The summaries of `email`'s events on their own Google calendar that hold `text`."""
    items = stack.google_as(email).events().list(calendarId=email, q=text).execute()["items"]
    return sorted(e["summary"] for e in items)


def test_after_each_push_the_writes_queue_is_polled_at_most_twice_in_the_next_85_ms(
    redis_stack: SyncStack,
) -> None:
    stack = redis_stack
    emails = [f"pace{n}@example.com" for n in range(3)]
    people = [stack.connect_pulled(email) for email in emails]
    fetches = Fetches(stack, "writes")
    for n in range(6):
        # Given creates of three users, each alone in the writes queue
        made = [create(stack, people[n % 3], f"paced {n}", n)]
        wait_until(functools.partial(synced, stack, made), what="the push")
        time.sleep(0.3)
    # Then after the fetch that brought each push, the consumer fetched at most twice in
    # 85 ms: its refill at once, then one poll 40-80 ms later, the next one at least 50 ms
    # after that (Dramatiq's own backoff polls after 5-10, 10-20, 20-40 ms: four fetches
    # by 70 ms)
    after = fetches.after_each_message(0.085)
    assert len(after) == 6
    assert max(after) <= 2, after
    # And every user's creates are on their own Google calendar, once each
    for n, email in enumerate(emails):
        assert on_google(stack, email, "paced") == [f"paced {k}" for k in range(6) if k % 3 == n]


def test_messages_sent_while_the_consumer_backs_off_are_all_processed(
    redis_stack: SyncStack,
) -> None:
    stack = redis_stack
    people = [stack.connect_pulled(f"burst{n}@example.com") for n in range(3)]
    ids: list[str] = []
    # Given creates from three users, sent in bursts and gaps around the consumer's polls
    for n in range(9):
        ids.append(create(stack, people[n % 3], f"burst {n}", n % 12))
        time.sleep((0.0, 0.03, 0.07)[n % 3])
    # Then every one is pushed, and each user's are on their calendar once
    wait_until(lambda: synced(stack, ids), what="every push")
    for n in range(3):
        expected = [f"burst {k}" for k in range(9) if k % 3 == n]
        assert on_google(stack, f"burst{n}@example.com", "burst") == expected


def test_the_paced_consumer_starts_its_backoff_deeper_only_when_it_may_fetch(
    redis_url: str,
) -> None:
    """The pacing's contract on a real Redis queue, two users' messages: after a message,
    a consumer that may fetch more polls next at `FIRST_POLL_MISSES` steps of its backoff;
    one that holds its prefetch waits Dramatiq's short first step, without fetching, so
    that it refills as soon as a message is acked (review SA)."""
    broker = PacedRedisBroker(url=redis_url, namespace="sa-pace")  # type: ignore[no-untyped-call]
    broker.declare_queue("paced")
    for user in ("ann", "bob"):
        broker.enqueue(
            Message(queue_name="paced", actor_name="noop", args=(user,), kwargs={}, options={})
        )
    consumer = broker.consume("paced", prefetch=1, timeout=1000)
    try:
        # Given the first user's message in hand: the consumer holds its prefetch
        first = next(consumer)
        assert first is not None
        assert first.args == ("ann",)
        # Then it waits without fetching, at Dramatiq's first step
        assert next(consumer) is None
        assert consumer.misses == 1
        # And once that message is acked, it fetches the second user's at once
        consumer.ack(first)
        second = next(consumer)
        assert second is not None
        assert second.args == ("bob",)
        consumer.ack(second)
        # Then the queue empty, its first poll is `FIRST_POLL_MISSES` steps in
        assert next(consumer) is None
        assert consumer.misses == FIRST_POLL_MISSES + 1
        assert broker.do_qsize("paced") == 0
    finally:
        consumer.close()
        broker.client.connection_pool.disconnect()


def test_delayed_messages_reach_the_paced_worker_once_each(redis_url: str) -> None:
    """Messages sent with a delay go through the delay queue's consumer (paced too) and
    are each processed once, as are those sent at once; a stopped worker leaves none
    unacked (review SA)."""
    broker = PacedRedisBroker(url=redis_url, namespace="sa-delay")  # type: ignore[no-untyped-call]
    seen: list[str] = []
    lock = threading.Lock()

    def note(user: str) -> None:
        with lock:
            seen.append(user)

    actor = dramatiq.actor(note, broker=broker, queue_name="paced", actor_name="note")
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=200)
    worker.start()
    try:
        for n, user in enumerate(["ann", "bob", "cy"]):
            actor.send_with_options(args=(f"{user} later",), delay=150 + 60 * n)
            actor.send(f"{user} now")
        wait_until(lambda: len(seen) >= 6, what="every message")
        time.sleep(0.3)  # any duplicate would arrive by now
    finally:
        worker.stop()
        broker.client.connection_pool.disconnect()
    assert sorted(seen) == sorted(
        f"{u} {w}" for u in ("ann", "bob", "cy") for w in ("now", "later")
    )
    client = redis.Redis.from_url(redis_url)
    try:
        unacked = [key for key in client.keys("sa-delay*") if b"acks" in key and client.scard(key)]
    finally:
        client.close()
    assert unacked == []
