"""The multi-tenant simulation at scale: hundreds of users, faults mixed in.

Run: ``.venv/bin/python -m tests.perf.bench_tenants [--users 500] [--steps 10]
[--mode production|embedded|both] [--seed N] [--no-faults]``

The same code as the CI test (``tests/sim``, docs/faults.md): the users are created on
the emulator (each with 2-3 calendars, one shared read-only by another user), sign in
through ``/auth/google``, then run `--steps` random operations each, on calsync's API and
on Google as other clients, from `--threads` client threads, while the faults of the
mode happen (kill -9, a Redis restart, Google 5xx/429 bursts, dropped and repeated
notifications, a revoked and restored grant, a key rotation). Then everything is healed,
every user asks for a sync, and the run waits until every user's events equal their
Google calendars.

Prints, per mode: operations (and acknowledged writes), the convergence time after the
operations stopped, the lost writes, duplicate Google writes and cross-user leaks (each
must be 0; the exit status is 1 otherwise), and the peak resident memory of calsync's
processes (production: the API process plus the largest worker times the workers).
Needs PostgreSQL as the tests do (a database of its own, dropped after the run) and, in
production mode, ``redis-server`` on PATH (a private Redis, restarted as a fault). Both
modes use an emulator process of their own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tests.faults.services import private_folder
from tests.sim.report import Report
from tests.sim.runner import SimConfig, simulate
from tests.sim.systems import EmbeddedSystem, ProductionSystem, System

SYSTEMS: dict[str, Callable[[Path, str], System]] = {
    "embedded": EmbeddedSystem,
    "production": ProductionSystem,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--steps", type=int, default=10, help="operations per user")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--mode", choices=["production", "embedded", "both"], default="production")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: new)")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--converge-timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    modes = ["embedded", "production"] if args.mode == "both" else [args.mode]
    reports: list[Report] = []
    for mode in modes:
        seed = args.seed if args.seed is not None else SimConfig.from_env().seed
        config = SimConfig(
            seed=seed,
            users=args.users,
            steps=args.steps,
            threads=args.threads,
            faults=not args.no_faults,
            converge_timeout=args.converge_timeout,
            setup_timeout=max(120.0, args.users * 1.0),
        )
        folder = private_folder(f"calsync-bench-tenants-{mode}-")
        report = simulate(config, SYSTEMS[mode], folder)
        reports.append(report)
        print("\n".join(report.lines()), flush=True)
    print()
    print("| mode | users | operations | acknowledged writes | convergence | lost | duplicates "
          "| leaks | unequal users | peak memory |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for report in reports:
        print(
            f"| {report.mode} | {report.users} | {report.operations} | "
            f"{report.acknowledged_writes} | {report.convergence_seconds:.1f} s | "
            f"{len(report.lost)} | {report.duplicates} | {len(report.leaks)} | "
            f"{len(report.unequal)} | {report.peak_memory / 2**20:.0f} MiB |"
        )
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
