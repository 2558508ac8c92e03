"""A Hypothesis state machine: local edits, remote edits, outages and syncs, interleaved.

Each example is one calsync (events API through Starlette's TestClient, PostgreSQL,
Redis) and the emulator, with the push and the pull run by hand so that the interleaving
is exactly the one Hypothesis chose (`tests/integration/events/conftest.py`'s
``EventsApp``; its clock and retry sleeps are injected, nothing waits). The rules:

- local: create, retitle, delete events through the API (always accepted: the API never
  calls Google);
- remote: another Google client (a writer on the calendar) inserts, retitles, deletes;
- outages: Google fails every request of calsync's user with 500, 503, 429, 403
  rateLimitExceeded or connection resets, until the outage ends; one-shot worst moments:
  an insert applied whose answer is lost, a patch applied then answered 503, a forced
  412 on a patch, a 410 on the next listing;
- syncs: push everything due (the clock moves past the backoffs), or pull.

After each example the faults are healed and syncs run until quiet; then the store must
equal Google, every event created locally and deleted by nobody must exist on both
sides, nothing may be stuck unsynced, and nothing may have been inserted twice.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    multiple,
    rule,
    run_state_machine_as_test,
)

from calsync.config import Settings
from calsync.emulator.testing import build_calendar_service
from calsync.providers.errors import ProviderError
from calsync.store.db import make_engine
from tests.conftest import FakeGoogle, emptying_statement
from tests.faults.helpers import EDITOR, EVENTS, body
from tests.faults.ledger import Verdict, judge, local_view, report
from tests.integration.events.conftest import EventsApp, User, running
from tests.integration.sync.conftest import SyncStack

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(300)]

ALICE = "alice@example.com"
TITLES = st.sampled_from(["standup", "review", "lunch", "1:1", "retro", "planning"])
OUTAGES: dict[str, dict[str, Any]] = {
    "500": {"kind": "status", "status": 500},
    "503": {"kind": "status", "status": 503},
    "429": {"kind": "status", "status": 429, "headers": {"Retry-After": "2"}},
    "403": {"kind": "status", "status": 403, "reason": "rateLimitExceeded"},
    "reset": {"kind": "reset"},
}
WORST_MOMENTS: dict[str, dict[str, Any]] = {
    "insert applied, answer lost": {
        "kind": "reset",
        "method": "POST",
        "path": EVENTS + "$",
        "after_write": True,
    },
    "patch applied, answered 503": {
        "kind": "status",
        "status": 503,
        "method": "PATCH",
        "after_write": True,
    },
    "412 on a patch": {"kind": "status", "status": 412, "method": "PATCH"},
    "410 on a listing": {"kind": "status", "status": 410, "method": "GET", "path": EVENTS + "$"},
}
HEAL_ROUNDS = 8
EXAMPLES = 15
STEPS = 20


def empty_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(emptying_statement(connection)))
    engine.dispose()


class CalendarSync(RuleBasedStateMachine):
    """See the module docstring. `settings_` and `google` are set by the test."""

    settings_: Settings
    google: FakeGoogle
    verdicts: list[Verdict]

    local_events = Bundle("local_events")

    def __init__(self) -> None:
        super().__init__()
        empty_tables(self.settings_.database_url)
        self.google.control.reset()
        self._running = running(self.settings_, self.google)
        self.app: EventsApp = next(self._running)
        self.alice: User | None = None
        self.created: set[str] = set()  # Google ids of events created through the API
        self.deleted: set[str] = set()  # ... and of events deleted on either side
        self.faults_on = False
        self.steps: list[str] = []

    @initialize(target=local_events)
    def connect(self) -> Any:
        """alice connected, with two events of her own and two of the other client's,
        synced both ways, so that every example starts with something to break."""
        self.alice = self.app.connect(ALICE)
        self.google.control.create_user(EDITOR)
        self.google.control.share(ALICE, EDITOR, "writer")
        token = self.google.control.issue_tokens(EDITOR)["access_token"]
        self.editor = build_calendar_service(self.google.url, token)
        self.app.remotes.append(self.editor)
        mine = [self.create_locally(title, day) for title, day in (("seed", 1), ("seed", 2))]
        for day in (3, 4):
            self.insert_remotely("seed", day)
        self.push()
        self.pull()
        return multiple(*mine)

    @property
    def user(self) -> User:
        assert self.alice is not None
        return self.alice

    # -- local edits through the API -------------------------------------------------

    @rule(target=local_events, title=TITLES, day=st.integers(1, 28))
    def create_locally(self, title: str, day: int) -> str:
        created = self.app.create(self.user, body(title, day))
        self.created.add(created["google_event_id"])
        self.steps.append(f"create {title}")
        return str(created["id"])

    @rule(event_id=local_events, title=TITLES)
    def retitle_locally(self, event_id: str, title: str) -> None:
        answer = self.app.put(self.user, event_id, {"title": f"{title} (local)"})
        assert answer.status_code in (200, 404), answer.text
        self.steps.append(f"retitle {event_id[:8]} locally: {answer.status_code}")

    @rule(event_id=consumes(local_events))
    def delete_locally(self, event_id: str) -> None:
        shown = self.app.client.get(f"/events/{event_id}", headers=self.user.headers)
        answer = self.app.client.delete(f"/events/{event_id}", headers=self.user.headers)
        assert answer.status_code in (204, 404), answer.text
        if shown.status_code == 200:
            self.deleted.add(shown.json()["google_event_id"])
        self.steps.append(f"delete {event_id[:8]} locally: {answer.status_code}")

    # -- another client on Google ------------------------------------------------------

    def _remote_ids(self) -> list[str]:
        items = (
            self.editor.events()
            .list(calendarId=ALICE, maxResults=2500)
            .execute(num_retries=3)["items"]
        )
        return sorted(e["id"] for e in items if e.get("status") != "cancelled")

    @rule(title=TITLES, day=st.integers(1, 28))
    def insert_remotely(self, title: str, day: int) -> None:
        event = body(title, day)
        self.editor.events().insert(
            calendarId=ALICE,
            body={
                "summary": f"{title} (remote)",
                "start": {"dateTime": event["start_time"]},
                "end": {"dateTime": event["end_time"]},
            },
        ).execute(num_retries=3)
        self.steps.append(f"insert {title} remotely")

    @rule(pick=st.integers(0, 50), title=TITLES)
    def retitle_remotely(self, pick: int, title: str) -> None:
        ids = self._remote_ids()
        if ids:
            google_id = ids[pick % len(ids)]
            self.editor.events().patch(
                calendarId=ALICE, eventId=google_id, body={"summary": f"{title} (remote)"}
            ).execute(num_retries=3)
            self.steps.append(f"retitle {google_id[:8]} remotely")

    @rule(pick=st.integers(0, 50))
    def delete_remotely(self, pick: int) -> None:
        ids = self._remote_ids()
        if ids:
            google_id = ids[pick % len(ids)]
            self.editor.events().delete(calendarId=ALICE, eventId=google_id).execute(num_retries=3)
            self.deleted.add(google_id)
            self.steps.append(f"delete {google_id[:8]} remotely")

    # -- Google failing ----------------------------------------------------------------

    @rule(kind=st.sampled_from(sorted(OUTAGES)))
    def outage(self, kind: str) -> None:
        spec = {"path": EVENTS, "user": ALICE, "count": None} | OUTAGES[kind]
        self.google.control.add_fault(**spec)
        self.faults_on = True
        self.steps.append(f"outage {kind}")

    @rule(moment=st.sampled_from(sorted(WORST_MOMENTS)))
    def worst_moment(self, moment: str) -> None:
        spec = {"path": EVENTS, "user": ALICE, "count": 1} | WORST_MOMENTS[moment]
        self.google.control.add_fault(**spec)
        self.faults_on = True
        self.steps.append(f"arm: {moment}")

    @rule()
    def heal(self) -> None:
        self.google.control.clear_faults()
        self.faults_on = False
        self.steps.append("heal")

    # -- syncs ---------------------------------------------------------------------------

    @rule()
    def push(self) -> None:
        self.app.clock.advance(hours=2)
        results = self.app.push_all(rounds=3)
        self.steps.append(f"push: {[r.status.value for r in results]}")

    @rule()
    def pull(self) -> None:
        try:
            self.app.pull(self.user)
            self.steps.append("pull")
        except ProviderError as err:
            if not self.faults_on:
                raise AssertionError(f"a pull failed without a fault: {err!r}") from err
            self.steps.append(f"pull failed: {type(err).__name__}")

    # -- after each example --------------------------------------------------------------

    def _quiet(self, stack: SyncStack) -> bool:
        local, stuck = local_view(stack, ALICE)
        return not stuck and local == stack.remote_events(ALICE)

    def teardown(self) -> None:
        try:
            if self.alice is None:
                return
            self.heal()
            stack = SyncStack(self.app.services, self.google, "", user_id=self.user.id, email=ALICE)
            for _ in range(HEAL_ROUNDS):
                self.push()
                self.pull()
                self.push()
                if self._quiet(stack):
                    break
            verdict = judge(
                stack,
                "Hypothesis: local/remote edits, outages, syncs",
                calendar=ALICE,
                calsync_user=ALICE,
                present=self.created - self.deleted,
            )
            self.verdicts.append(verdict)
            if verdict.lost or verdict.duplicates:
                print(verdict.line(), *verdict.problems, "steps:", *self.steps, sep="\n  ")
            assert verdict.lost == 0, verdict.problems
            assert verdict.duplicates == 0, verdict.problems
            for service in stack._services_of.values():
                service.close()
        finally:
            next(self._running, None)


def test_interleaved_edits_outages_and_syncs_converge(
    production_settings: Settings, fake_google: FakeGoogle
) -> None:
    verdicts: list[Verdict] = []
    machine = type(
        "Machine",
        (CalendarSync,),
        {"settings_": production_settings, "google": fake_google, "verdicts": verdicts},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # One line for the whole run: every example's figures added up
    total = Verdict(
        f"Hypothesis state machine ({len(verdicts)} examples x <= {STEPS} steps)",
        lost=sum(v.lost for v in verdicts),
        duplicates=sum(v.duplicates for v in verdicts),
        compared=sum(v.compared for v in verdicts),
    )
    for verdict in verdicts:
        for name, count in verdict.writes.items():
            total.writes[name] = total.writes.get(name, 0) + count
    assert len(verdicts) >= EXAMPLES
    report(total)
