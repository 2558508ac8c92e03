"""`calsync.metric_tally`: counts kept in bulk reach their metrics exactly as counted one
by one (decision HQ2)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Histogram

from calsync.metric_tally import Tally, flush_all

BUCKETS = (0.001, 0.01, 0.1, 1.0)
#: binary fractions, so that sums do not depend on the order of addition; 1.0 is a bound
AMOUNTS = [0.0, 2**-11, 2**-10, 2**-9, 2**-7, 2**-5, 2**-4, 0.5, 1.0, 3.0, 2**-12, 0.25]


def metrics() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    counter = Counter("t_answers_total", "answers", ["status"], registry=registry)
    histogram = Histogram("t_seconds", "time", ["route"], buckets=BUCKETS, registry=registry)
    return registry, counter, histogram


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_a_flush_gives_the_samples_of_counting_one_by_one() -> None:
    direct, direct_counter, direct_histogram = metrics()
    tallied, tallied_counter, tallied_histogram = metrics()
    tally = Tally(interval=3600.0)  # no timer runs within the test

    async def count() -> None:
        # Given the same counts made one by one and through a tally, on the serving loop
        for n, amount in enumerate(AMOUNTS):
            status = "202" if n % 3 else "200"
            direct_counter.labels(status).inc()
            direct_histogram.labels("/x").observe(amount)
            tally.inc(tallied_counter.labels(status))
            tally.observe(tallied_histogram.labels("/x"), amount)
        # When nothing flushed yet, nothing shows; after a flush, the same samples show
        assert samples(tallied) != samples(direct)
        tally.flush()
        assert samples(tallied) == samples(direct)
        # and a second round adds to the first
        for amount in AMOUNTS:
            direct_histogram.labels("/x").observe(amount)
            tally.observe(tallied_histogram.labels("/x"), amount)
        flush_all()

    asyncio.run(count())
    assert samples(tallied) == samples(direct)


def test_counts_reach_their_metrics_without_a_flush_call_on_a_loop() -> None:
    registry, counter, _ = metrics()
    tally = Tally(interval=0.0)

    async def count() -> None:
        for _ in range(5):
            tally.inc(counter.labels("202"))
        for _ in range(3):  # the timer's turn of the loop
            await asyncio.sleep(0)

    asyncio.run(count())
    assert registry.get_sample_value("t_answers_total", {"status": "202"}) == 5


def test_counts_outside_a_loop_are_added_at_once() -> None:
    registry, counter, _ = metrics()
    Tally().inc(counter.labels("200"))
    assert registry.get_sample_value("t_answers_total", {"status": "200"}) == 1


def test_a_histogram_without_bulk_buckets_is_observed_at_once() -> None:
    class Plain:
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, amount: float) -> None:
            self.seen.append(amount)

    plain = Plain()
    tally = Tally()
    tally.observe(plain, 0.5)
    tally.observe(plain, 0.25)
    assert plain.seen == [0.5, 0.25]
