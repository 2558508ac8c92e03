"""The ledger of acknowledged writes, and what the end state owes them.

Every write a client was told was accepted (a 2xx from calsync's API, or from Google
for the other client) is recorded with the Google ids it concerns, the fields it set,
and when it was sent and answered (monotonic seconds). At the end `judge` compares the
ledger with what Google holds (the simulation separately checks that calsync shows
exactly that), under last-writer semantics per event and field:

- an event created, and deleted by nobody, must exist;
- a field must hold the value of a write that no later write of that field followed
  (writes that overlap in time are concurrent: either may be last), or a side's last
  write of it when that side wrote the event again (any field) no earlier than the
  other side's last write of the field: Google keeps one update time per event, and
  calsync's `last_updated_wins` goes by it (decision C2);
- a deleted event must be gone unless a write to it came after the delete (then
  either outcome is right: a delete and an edit race, and calsync's policy decides);
- writes to one instance of a series are no longer owed once the series itself
  changed afterwards (its rule, times or a this-and-following split may drop them) or
  was deleted, nor are writes to a calendar that was deleted.

A violation is a *lost* write; `judge` returns one line per lost write.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from calsync.emulator.ids import split_instance_id

#: The fields the ledger follows (normalised as in `tests.sim.shapes`).
FIELDS = ("title", "description", "location", "start", "end")


@dataclass(frozen=True)
class Write:
    """One acknowledged write of one event (or series instance)."""

    side: str  # "api" or "google"
    who: str
    calendar: str  # Google calendar id
    event: str  # Google event id (an instance id for one instance)
    kind: str  # "create", "update", "delete"
    fields: Mapping[str, Any]
    sent: float
    acked: float
    reshapes_series: bool = False  # changes the series' instances (rule, times, split)

    @property
    def family(self) -> str:
        """The series' Google id for an instance id, else the event's own id."""
        instance = split_instance_id(self.event)
        return instance[0] if instance is not None else self.event


@dataclass
class Ledger:
    """Acknowledged writes (thread-safe appends)."""

    writes: list[Write] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, write: Write) -> None:
        with self._lock:
            self.writes.append(write)

    def __len__(self) -> int:
        return len(self.writes)


def _after(later: Write, earlier: Write) -> bool:
    """`later` was sent after `earlier` was acknowledged (real-time order, no overlap)."""
    return later.sent > earlier.acked


def judge(
    ledger: Ledger,
    final: Mapping[tuple[str, str], Mapping[str, Any]],
    *,
    gone_calendars: Iterable[str] = (),
    tolerated: Callable[[tuple[str, str]], bool] = lambda key: False,
) -> tuple[list[str], list[str]]:
    """Lost writes (see the module docstring), and apart from them those on keys
    `tolerated` says are known. `final` maps (calendar, event) Google ids to the live
    event's normalised fields (cancelled and deleted events are absent)."""
    gone = set(gone_calendars)
    by_event: dict[tuple[str, str], list[Write]] = defaultdict(list)
    by_family: dict[tuple[str, str], list[Write]] = defaultdict(list)
    for write in ledger.writes:
        if write.calendar in gone:
            continue
        by_event[write.calendar, write.event].append(write)
        by_family[write.calendar, write.family].append(write)
    lost: list[str] = []
    known: list[str] = []
    for key, writes in sorted(by_event.items()):
        calendar, event = key
        found = known if tolerated(key) else lost
        family_id = writes[0].family
        if event != family_id:
            # one instance: no longer owed once its series went (at any time: a client
            # may still write an instance of a series deleted elsewhere), or changed
            # shape after the instance was written
            first = min(w.sent for w in writes)
            if any(
                w.event == family_id
                and (w.kind == "delete" or (w.reshapes_series and w.acked >= first))
                for w in by_family[calendar, family_id]
            ):
                continue
        deletes = [w for w in writes if w.kind == "delete"]
        edits = [w for w in writes if w.kind != "delete"]
        held = final.get(key)
        if deletes:
            latest_delete = max(deletes, key=lambda w: w.acked)
            if any(not _after(latest_delete, w) for w in edits):
                continue  # an edit raced or followed the delete: either outcome is right
            if held is not None:
                found.append(f"{calendar} {event}: deleted by {_who(latest_delete)}, still there")
            continue
        if held is None:
            created = [w for w in edits if w.kind == "create"]
            first = created[0] if created else edits[0]
            found.append(f"{calendar} {event}: written by {_who(first)}, gone")
            continue
        for name in FIELDS:
            setting = [w for w in edits if name in w.fields]
            if not setting:
                continue
            last = [w for w in setting if not any(_after(o, w) for o in setting)]
            allowed = [w.fields[name] for w in last + _event_level(setting, last, edits)]
            if held.get(name) not in allowed:
                found.append(
                    f"{calendar} {event}: {name}={held.get(name)!r}, last written "
                    + " or ".join(f"{w.fields[name]!r} by {_who(w)}" for w in last)
                )
    return lost, known


def _event_level(setting: list[Write], last: list[Write], edits: list[Write]) -> list[Write]:
    """Writes of a field that calsync's `last_updated_wins` may rightly keep although a
    write of the other side followed them (decision C2).

    Google keeps one update time per event, not per field, so calsync orders a field
    both sides changed by each side's latest write to the *event*: a side's last write
    of the field stands if the same side wrote the event (any field) no earlier than
    the other side's last write of it - they overlap, or that side's write came after.
    """
    found: list[Write] = []
    for side in {w.side for w in setting} - {w.side for w in last}:
        own = [w for w in setting if w.side == side]
        latest = [w for w in own if not any(_after(o, w) for o in own)]
        later_on_event = any(not _after(o, w) for w in edits if w.side == side for o in last)
        if later_on_event:
            found += latest
    return found


def _who(write: Write) -> str:
    return f"{write.side}:{write.who}@{write.acked:.2f}"
