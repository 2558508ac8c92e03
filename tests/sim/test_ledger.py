"""The ledger's judgement of lost writes (`tests.sim.ledger.judge`), without a run."""

from __future__ import annotations

from typing import Any

from tests.sim.explain import explain, lost_keys
from tests.sim.ledger import Ledger, Write, judge
from tests.sim.world import World

CALENDAR = "team@group.calendar.google.com"
EVENT = "0j8143sb6g0op9nkrgb76mo4ak"


def _write(side: str, kind: str, sent: float, **fields: Any) -> Write:
    who = "sim-editor@example.com" if side == "google" else "u2@sim.example"
    return Write(side, who, CALENDAR, EVENT, kind, fields, sent=sent, acked=sent + 0.3)


def _lost(*writes: Write, **final: Any) -> list[str]:
    ledger = Ledger()
    for write in writes:
        ledger.add(write)
    held = {"title": "planning", "description": "", "location": ""} | final
    lost, known = judge(ledger, {(CALENDAR, EVENT): held})
    assert known == []
    return lost


def test_a_field_may_keep_googles_value_when_google_wrote_the_event_again_later() -> None:
    """Seed 20261206 (production): Google moved the event, the user moved it again
    through calsync before calsync had pulled that, then Google changed its description.
    Google's one update time per event is later than the user's edit, so
    `last_updated_wins` keeps Google's time (decision C2): not a lost write."""
    writes = (
        _write("google", "create", 890.0, title="planning", start="2031-04-26", end="2031-04-27"),
        _write("google", "update", 910.5, start="2031-04-25", end="2031-04-26"),
        _write("api", "update", 913.5, start="2031-04-27", end="2031-04-28"),
        _write("google", "update", 914.6, description="google edited"),
    )
    assert _lost(*writes, description="google edited", start="2031-04-25", end="2031-04-26") == []
    assert _lost(*writes, description="google edited", start="2031-04-27", end="2031-04-28") == []


def test_a_field_google_wrote_after_the_users_last_write_of_the_event_is_owed() -> None:
    """What stays a lost write: the user's edit overwrote a later Google change of the same
    field (bug 1 of the simulation, seed 632973422), and a field the user wrote last that
    Google's value replaced with no Google write of the event after it."""
    newer_on_google = (
        _write("google", "create", 1.0, title="planning", start="2031-04-26", end="2031-04-27"),
        _write("api", "update", 5.0, description="the user's"),
        _write("google", "update", 9.0, description="Google's"),
    )
    (lost,) = _lost(*newer_on_google, description="the user's", start="2031-04-26",
                    end="2031-04-27")  # fmt: skip
    assert 'description="the user\'s"' in lost
    user_last = (
        _write("google", "create", 1.0, title="planning", start="2031-04-26", end="2031-04-27"),
        _write("google", "update", 3.0, start="2031-04-25", end="2031-04-26"),
        _write("api", "update", 5.0, start="2031-04-27", end="2031-04-28"),
    )
    assert len(_lost(*user_last, start="2031-04-25", end="2031-04-26")) == 2


def test_a_lost_writes_story_lists_the_events_writes_in_order() -> None:
    """The report tells each lost event's story (`tests.sim.explain`): every write of
    it, whoever made it, in the order they were sent, with the fields they set."""
    ledger = Ledger()
    for write in (
        _write("api", "update", 539.86, title="api edit", start="2031-04-15"),
        _write("api", "create", 529.49, title="planning", start="2031-04-16"),
        _write("google", "update", 539.79, title="google edit"),
    ):
        ledger.add(write)
    lost, _ = judge(ledger, {(CALENDAR, EVENT): {"title": "api edit", "start": "2031-04-16"}})
    assert lost_keys(lost) == [(CALENDAR, EVENT)]
    story = explain(World([]), ledger, lost_keys(lost))
    assert story[0] == f"{CALENDAR} {EVENT}: its writes, then calsync's log of it"
    assert [line.strip().split(" ", 2)[1:] for line in story[1:4]] == [
        ["api:u2@sim.example", "create {'title': 'planning', 'start': '2031-04-16'}"],
        ["google:sim-editor@example.com", "update {'title': 'google edit'}"],
        ["api:u2@sim.example", "update {'title': 'api edit', 'start': '2031-04-15'}"],
    ]
    assert story[4].startswith("  (calsync's log unread")  # no run: no calsync to ask
