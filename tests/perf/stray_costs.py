"""The pull's check for stray exceptions (decision JH1): CPU per listing, printed, nothing
asserted.

Run: ``.venv/bin/python -m tests.perf.stray_costs [--exceptions 10] [--rounds 5]``

A listing of ``--exceptions`` live exceptions, each of its own weekly series (two days a
week) whose masters are stored (not listed): `masters_wanted` and `stray_cancelled` as
the pull runs them, per listing, with the rules' cache cleared before each listing
(cold: a pull in a fresh worker) and kept (warm). Every exception is an instance of its
series, so each one is evaluated in full and kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from datetime import datetime

from calsync.domain.models import Event, EventTime
from calsync.domain.recurrence import clear_rule_cache
from calsync.sync.stray_exceptions import masters_wanted, stray_cancelled

_PER_ROUND = 100


def _berlin(month: int, day: int, hour: int = 9) -> EventTime:
    return EventTime.at(datetime(2031, month, day, hour), "Europe/Berlin")


def _listing(count: int) -> tuple[dict[str, Event], dict[str, Event]]:
    masters: dict[str, Event] = {}
    latest: dict[str, Event] = {}
    for i in range(count):
        master = Event(
            title=f"S{i}",
            start=_berlin(1, 6),
            end=_berlin(1, 6, 10),
            recurrence=("RRULE:FREQ=WEEKLY;BYDAY=MO,WE",),
            provider_event_id=f"m{i}",
            etag='"1"',
        )
        masters[f"m{i}"] = master
        latest[f"m{i}_x"] = dataclasses.replace(
            master,
            recurrence=(),
            provider_event_id=f"m{i}_x",
            recurring_event_id=f"m{i}",
            original_start=_berlin(3, 3),  # a Monday of the series
            title="renamed",
        )
    return latest, masters


def _round(latest: dict[str, Event], masters: dict[str, Event], *, cold: bool) -> float:
    """CPU milliseconds per listing, over `_PER_ROUND` listings."""
    total = 0.0
    for _ in range(_PER_ROUND):
        if cold:
            clear_rule_cache()
        listing = dict(latest)
        began = time.process_time()
        masters_wanted(listing)
        kept = stray_cancelled(listing, masters) == 0
        total += time.process_time() - began
        assert kept
    return total / _PER_ROUND * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exceptions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    latest, masters = _listing(args.exceptions)
    for cold in (True, False):
        for number in range(1, args.rounds + 1):
            cost = _round(latest, masters, cold=cold)
            label = "cold" if cold else "warm"
            print(f"round {number} {label} rules: {cost:.3f} ms CPU per listing", flush=True)


if __name__ == "__main__":
    main()
