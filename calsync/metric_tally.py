"""Prometheus counts of a hot path kept in plain integers and added to their metrics in
bulk (decision HQ2).

A bound counter's ``inc`` takes a lock and checks its argument; a histogram's ``observe``
walks its buckets under locks too: about 1.3 µs of CPU for the four counts the webhook
intake makes per notification, the largest part of what it costs over the bare ceiling.
A `Tally` counts on its event loop in a dict and adds the totals to the same metric
objects:

- at most `Tally.interval` seconds after the first count since the last flush (a timer
  on the loop);
- before this process's ``/metrics`` is read (`flush_all`, called by
  `calsync.web.health.metrics_endpoint`);
- when the server shuts down (the owner calls `Tally.flush`).

So a scrape of the process itself sees every count; a scrape that reads other
processes' files (``PROMETHEUS_MULTIPROC_DIR``) sees them at most `interval` late, far
below any scrape interval. It does not change what is counted, only when.

Histograms are added to through prometheus-client's child attributes (``_buckets``,
``_sum``, the same values ``observe`` increments); a child without them (another
version of the library) is observed at once, as before. Used from one event loop per
tally; `flush_all` from that loop too (the ``/metrics`` endpoint runs on it).
"""

from __future__ import annotations

import asyncio
import bisect
import weakref
from typing import Any, Final

__all__ = ["INTERVAL_SECONDS", "Tally", "flush_all"]

#: How long counts may wait before their metrics show them (when nobody scrapes)
INTERVAL_SECONDS: Final = 0.25

_TALLIES: weakref.WeakSet[Tally] = weakref.WeakSet()


def flush_all() -> None:
    """Add every tally's pending counts to its metrics (before ``/metrics`` is read)."""
    for tally in list(_TALLIES):
        tally.flush()


class _Bins:
    """One histogram child's pending observations, by bucket."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: list[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0


def _bulk_histogram(child: Any) -> list[float] | None:
    """The upper bounds of a histogram child that can be added to in bulk, else None."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    if not isinstance(bounds, list) or not isinstance(buckets, list):
        return None
    if len(bounds) != len(buckets) or not hasattr(getattr(child, "_sum", None), "inc"):
        return None
    return [float(b) for b in bounds]


class Tally:
    """Counts for bound Prometheus children (``Counter.labels(...)``, a label-less
    counter, ``Histogram.labels(...)``), added to them by `flush`."""

    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._counts: dict[Any, int] = {}
        self._bins: dict[Any, _Bins | None] = {}
        self._timer: asyncio.TimerHandle | None = None
        _TALLIES.add(self)

    def inc(self, counter: Any) -> None:
        """Count one for `counter` (a bound counter child)."""
        counts = self._counts
        counts[counter] = counts.get(counter, 0) + 1
        if self._timer is None:
            self._arm()

    def observe(self, histogram: Any, amount: float) -> None:
        """Observe `amount` for `histogram` (a bound histogram child)."""
        try:
            bins = self._bins[histogram]
        except KeyError:
            bounds = _bulk_histogram(histogram)
            bins = self._bins[histogram] = None if bounds is None else _Bins(bounds)
        if bins is None:
            histogram.observe(amount)
            return
        bins.counts[bisect.bisect_left(bins.bounds, amount)] += 1
        bins.total += amount
        if self._timer is None:
            self._arm()

    def _arm(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # counted outside a loop: nothing will flush later
            self.flush()
            return
        self._timer = loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Add the pending counts to their metrics."""
        # a pending timer is left to fire (it finds little or nothing): cancelling it
        # from `flush_all` could touch a loop from another thread
        self._timer = None
        counts, self._counts = self._counts, {}
        for counter, n in counts.items():
            counter.inc(n)
        for histogram, bins in self._bins.items():
            if bins is None or not any(bins.counts):
                continue
            histogram._sum.inc(bins.total)
            for index, n in enumerate(bins.counts):
                if n:
                    histogram._buckets[index].inc(n)
            bins.counts = [0] * len(bins.bounds)
            bins.total = 0.0
