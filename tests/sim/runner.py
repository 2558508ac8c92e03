"""One simulation run, start to verdict: the code the CI test and the benchmark share.

`simulate(config, make_system, folder)`:

1. starts an emulator process and the system (`tests.sim.systems`);
2. creates the users and calendars on Google, seeds a few events
   (`tests.sim.world.populate`), signs every user in through ``/auth/google`` and waits
   until each user's calendars are listed;
3. runs every user's operations (`tests.sim.operations`) from `config.threads`
   threads - user *i*'s steps in order on thread *i* mod threads - while the planned
   faults (`tests.sim.faults`) happen as the run passes their moments;
4. heals, asks calsync to sync every user (``POST /sync``) and waits, at most
   `config.converge_timeout` seconds, until every user's ``GET /events`` equals Google;
5. checks the invariants (`tests.sim.invariants`) and returns a `Report`.

Nothing here asserts: the report says what held and the test asserts on it.
"""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from calsync.emulator.testing import EmulatorControl
from tests.faults.services import free_port
from tests.sim.clients import ApiClient, GoogleClients, sign_in
from tests.sim.dump import dump
from tests.sim.explain import explain, lost_keys
from tests.sim.faults import Faults, Planned, describe, schedule
from tests.sim.invariants import (
    UserCheck,
    compare_user,
    duplicates,
    final_google,
    google_view,
)
from tests.sim.known import known_divergences
from tests.sim.ledger import Ledger, judge
from tests.sim.observe import Sightings
from tests.sim.operations import (
    API_OPERATIONS,
    GOOGLE_OPERATIONS,
    ApiSide,
    GoogleSide,
    Operations,
    Tally,
)
from tests.sim.processes import emulator_process
from tests.sim.report import Report
from tests.sim.systems import System
from tests.sim.world import SimUser, World, populate

SEED_VARIABLE = "CALSYNC_SIM_SEED"
#: Set to 1 to keep the dump (`tests.sim.dump`) of a passing run too (a replay's merges).
DUMP_VARIABLE = "CALSYNC_SIM_DUMP"
#: The seeds CI runs, by mode (each passed repeatedly; docs/faults.md "Figures"). Embedded
#: 1449527753 is the run that found decision C1's lost exception.
CI_SEEDS = {"embedded": 1449527753, "production": 1504432042}
#: Operations that count as such in the figures (reads and probes are not operations).
OPERATION_NAMES = (set(API_OPERATIONS) | set(GOOGLE_OPERATIONS)) - {"read", "probe"}
#: Events with lost writes whose story (`tests.sim.explain`) the report tells.
SHOWN_STORIES = 5


@dataclass(frozen=True)
class SimConfig:
    """What to run: `users` users doing `steps` operations each, from `seed`."""

    seed: int
    users: int = 20
    steps: int = 20
    threads: int = 4
    faults: bool = True
    converge_timeout: float = 120.0
    setup_timeout: float = 120.0
    keep_dump: bool = False  # write dump.json after a passing run too

    @classmethod
    def from_env(cls, mode: str = "production", **defaults: int | float | bool) -> SimConfig:
        """The seed from ``CALSYNC_SIM_SEED`` (to replay a run); in CI (``CI`` set to 1,
        true or yes, as `tests.conftest.IN_CI` reads it) the fixed `CI_SEEDS` of `mode`, so
        that CI is deterministic as its Hypothesis tests are; else a fresh one (local runs
        and the benchmark search for new failures). ``CALSYNC_SIM_DUMP=1`` sets `keep_dump`."""
        raw = os.environ.get(SEED_VARIABLE)
        if raw:
            seed = int(raw)
        elif os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            seed = CI_SEEDS[mode]
        else:
            seed = random.SystemRandom().randrange(1, 2**31)
        keep = os.environ.get(DUMP_VARIABLE, "").lower() in {"1", "true", "yes"}
        return cls(seed=seed, keep_dump=keep, **defaults)  # type: ignore[arg-type]


@dataclass
class Run:
    """What one run keeps while it goes."""

    config: SimConfig
    system: System
    control: EmulatorControl
    google: GoogleClients
    ledger: Ledger = field(default_factory=Ledger)
    sightings: Sightings = field(default_factory=Sightings)
    tally: Tally = field(default_factory=Tally)
    world: World | None = None
    done: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def users(self) -> list[SimUser]:
        assert self.world is not None
        return self.world.users


def simulate(config: SimConfig, make_system: Callable[[Path, str], System], folder: Path) -> Report:
    """Run the simulation (module docstring) with its files in `folder`."""
    print(f"[sim] seed {config.seed}: replay with {SEED_VARIABLE}={config.seed}", flush=True)
    port = free_port()
    emulator = emulator_process(port, folder / "emulator.log").start()
    system = make_system(folder, emulator.url)
    report = Report(mode=system.mode, seed=config.seed, users=config.users)
    started = time.monotonic()
    run: Run | None = None
    try:
        with EmulatorControl(emulator.url, timeout=120.0) as control:
            control.configure(request_log_limit=10_000_000)
            system.start()
            run = Run(config, system, control, GoogleClients(emulator.url))
            _set_up(run)
            report.setup_seconds = time.monotonic() - started
            assert run.world is not None
            faults = Faults(system, run.world, control, run.google, config.seed)
            plan = schedule(config.seed, sorted(system.faults())) if config.faults else []
            print(f"[sim] {system.mode}: faults planned: {describe(plan)}", flush=True)
            phase = time.monotonic()
            _operate(run, faults, plan)
            report.operations_seconds = time.monotonic() - phase
            report.faults = faults.log + [f"heal: {n}" for n in faults.heal()]
            phase = time.monotonic()
            checks = _converge(run)
            report.convergence_seconds = time.monotonic() - phase
            _judge(run, checks, report)
            if not report.ok or config.keep_dump:
                saved = folder / "dump.json"
                report.dump = str(dump(run.world, run.google, run.ledger, saved, system.services))
    except Exception:
        report.problems.append("the run stopped: " + traceback.format_exc())
    finally:
        if run is not None:
            run.google.close()
            for user in run.world.users if run.world is not None else []:
                if user.api is not None:
                    user.api.close()
        try:
            report.peak_memory = system.peak_memory()
            system.stop()
        except Exception:  # a clean-up failure must not hide the run's report
            traceback.print_exc()
        emulator.stop()
        report.seconds = time.monotonic() - started
        (folder / "report.txt").write_text("\n".join(report.lines()) + "\n")
    return report


def _set_up(run: Run) -> None:
    run.world = populate(
        run.control,
        run.google,
        run.ledger,
        users=run.config.users,
        seed=run.config.seed,
        clock=time.monotonic,
    )

    def enter(user: SimUser) -> None:
        answer = sign_in(run.system.url, user.email)
        user.user_id = answer["user"]["id"]
        user.api = ApiClient(run.system.url, user.email, answer["token"], run.sightings)

    with ThreadPoolExecutor(min(8, run.config.threads * 2)) as pool:
        list(pool.map(enter, run.users))
    deadline = time.monotonic() + run.config.setup_timeout
    waiting = list(run.users)
    while waiting:
        assert run.world is not None
        waiting = [
            u
            for u in waiting
            if len(u.client.get("/calendars").json()["calendars"]) < len(run.world.visible(u.email))
        ]
        if waiting and time.monotonic() > deadline:
            raise TimeoutError(f"calendars never listed for {[u.email for u in waiting][:5]}")
        time.sleep(0.2 if waiting else 0)


def _operate(run: Run, faults: Faults, plan: list[Planned]) -> None:
    api = ApiSide(run.world, run.ledger, run.sightings, run.tally, run.config.seed)  # type: ignore[arg-type]
    google = GoogleSide(run.world, run.ledger, run.google, run.control, run.tally)  # type: ignore[arg-type]
    operations = Operations(api, google, run.config.seed)
    total = run.config.users * run.config.steps
    finished = threading.Event()

    def work(users: list[SimUser]) -> None:
        for step in range(run.config.steps):
            for user in users:
                try:
                    operations.run(user, step)
                except Exception as err:
                    run.tally.problem(f"{user.email} step {step}: {type(err).__name__}: {err}")
                with run._lock:
                    run.done += 1

    def inject() -> None:
        pending = list(plan)
        while pending and not finished.is_set():
            if run.done / total >= pending[0].at:
                planned = pending.pop(0)
                try:
                    faults.apply(planned)
                except Exception as err:
                    run.tally.problem(f"fault {planned.name}: {type(err).__name__}: {err}")
                print(f"[sim] {faults.log[-1] if faults.log else planned.name}", flush=True)
            else:
                finished.wait(0.1)
        for planned in pending:  # a short run can end before the last moments
            faults.apply(planned)
            print(f"[sim] after the operations: {faults.log[-1]}", flush=True)

    threads = max(1, min(run.config.threads, run.config.users))
    groups = [run.users[i::threads] for i in range(threads)]
    injector = threading.Thread(target=inject, name="sim-faults")
    injector.start()
    with ThreadPoolExecutor(threads, thread_name_prefix="sim-ops") as pool:
        list(pool.map(work, groups))
    finished.set()
    injector.join()


def _converge(run: Run) -> list[UserCheck]:
    """Ask for a sync of everyone, then wait until every user's view equals Google's."""
    deadline = time.monotonic() + run.config.converge_timeout
    for user in run.users:
        user.client.call("POST", "/sync")
    pending = list(run.users)
    tolerated = known_divergences(run.ledger)
    checks: dict[str, UserCheck] = {}
    confirming = False
    next_note = time.monotonic() + 30.0
    while True:
        with ThreadPoolExecutor(run.config.threads) as pool:
            results = list(
                pool.map(
                    lambda u: compare_user(u, google_view(run.google, u.email), tolerated), pending
                )
            )
        checks.update({c.email: c for c in results})
        pending = [u for u, c in zip(pending, results, strict=True) if not c.equal]
        if not pending:
            if confirming:
                return list(checks.values())
            confirming, pending = True, list(run.users)  # one more pass over everyone
            continue
        confirming = False
        if time.monotonic() > deadline:
            return list(checks.values())
        if time.monotonic() >= next_note:
            print(f"[sim] converging: {len(pending)} users not equal to Google yet", flush=True)
            next_note = time.monotonic() + 30.0
        time.sleep(1.0)


def _judge(run: Run, checks: list[UserCheck], report: Report) -> None:
    assert run.world is not None
    counted = [k for k in run.tally.done if k.split(" ", 1)[1] in OPERATION_NAMES]
    report.operations = sum(run.tally.done[k] for k in counted)
    report.operation_counts = dict(sorted(run.tally.done.items()))
    report.answers = run.sightings.answers
    report.acknowledged_writes = len(run.ledger)
    for check in checks:
        if not check.equal:
            stuck = [f"{check.unsynced} events not synced"] if check.unsynced else []
            report.unequal[check.email] = check.problems + stuck
    report.compared = sum(c.compared for c in checks)
    report.known = [f"{c.email}: {k}" for c in checks for k in c.known]
    found = duplicates(run.world, run.google, run.control)
    report.duplicates = found.count
    report.duplicate_problems = found.problems
    report.calsync_inserts = found.inserts
    final = final_google(run.world, run.google)
    report.lost, known = judge(
        run.ledger,
        final,
        gone_calendars=run.world.gone(),
        tolerated=known_divergences(run.ledger),
    )
    report.known += [f"ledger: {k}" for k in known]
    report.stories = explain(run.world, run.ledger, lost_keys(report.lost)[:SHOWN_STORIES])
    user_ids = {u.email: u.user_id for u in run.users}
    ever = {u.email: run.world.ever_visible(u.email) for u in run.users}
    report.leaks = run.sightings.leaks(user_ids, ever)
    report.problems += run.tally.problems
