"""Divergences the simulation knows about and reports apart, until they are decided.

**Orphaned exceptions** (`orphaned_exception`): a changed or cancelled instance of a
series (an exception, keyed by its original start) whose series then changes shape -
its times or rule moved on either side - so that the original start is no longer an
occurrence. calsync keeps showing such an exception in expanded lists (documented in
`calsync.domain.recurrence.expand`: "returned as given when it overlaps the window
(even if the replaced instance does not)"), and pushes edits of it, which Google
answers 404 (the event ends ``error``); the emulator lists it without ``singleEvents``
but leaves it out of expansions. Which of the two is Google's behaviour is open; the
regression tests in `tests/integration/events/test_sim_findings.py` pin the difference.

A difference (in the comparison with Google, or a write the ledger finds lost) is
tolerated only on an instance of a series that some acknowledged write reshaped during
the run; it is counted and printed as *known*, never hidden.
"""

from __future__ import annotations

from collections.abc import Callable

from calsync.emulator.ids import split_instance_id
from tests.sim.ledger import Ledger

Key = tuple[str, str]


def orphaned_exception(ledger: Ledger) -> Callable[[Key], bool]:
    """Whether a (calendar, event) key is an instance of a series reshaped in the run."""
    reshaped = {(w.calendar, w.family) for w in ledger.writes if w.reshapes_series}

    def tolerated(key: Key) -> bool:
        instance = split_instance_id(key[1])
        return instance is not None and (key[0], instance[0]) in reshaped

    return tolerated
