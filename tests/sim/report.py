"""A run's figures and verdict, printed the same way by the test and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

SHOWN = 25  # problems printed per kind


@dataclass
class Report:
    mode: str
    seed: int
    users: int
    operations: int = 0
    operation_counts: dict[str, int] = field(default_factory=dict)
    acknowledged_writes: int = 0
    answers: int = 0
    compared: int = 0
    calsync_inserts: int = 0
    faults: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    operations_seconds: float = 0.0
    convergence_seconds: float = 0.0
    seconds: float = 0.0
    peak_memory: int = 0  # bytes
    unequal: dict[str, list[str]] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    #: the story of each event with a lost write (`tests.sim.explain`)
    stories: list[str] = field(default_factory=list)
    duplicates: int = 0
    duplicate_problems: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    dump: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.unequal or self.lost or self.duplicates or self.leaks or self.problems)

    def summary(self) -> str:
        return (
            f"[sim] {self.mode} seed={self.seed} users={self.users}: "
            f"operations={self.operations} acknowledged writes={self.acknowledged_writes} "
            f"answers checked={self.answers} events compared={self.compared} "
            f"convergence={self.convergence_seconds:.1f}s "
            f"lost={len(self.lost)} duplicates={self.duplicates} leaks={len(self.leaks)} "
            f"users unequal={len(self.unequal)} problems={len(self.problems)} "
            f"known divergences={len(self.known)} "
            f"peak memory={self.peak_memory / 2**20:.0f} MiB "
            f"(setup {self.setup_seconds:.0f}s, operations {self.operations_seconds:.0f}s, "
            f"total {self.seconds:.0f}s)"
        )

    def lines(self) -> list[str]:
        out = [self.summary(), f"  operations: {self.operation_counts}"]
        out += [f"  fault {f}" for f in self.faults]
        for name, items in (
            ("lost", self.lost),
            ("duplicate", self.duplicate_problems),
            ("leak", self.leaks),
            ("problem", self.problems),
            ("known (tests/sim/known.py)", self.known),
        ):
            out += [f"  {name}: {p}" for p in items[:SHOWN]]
            if len(items) > SHOWN:
                out.append(f"  ... {len(items) - SHOWN} more {name} lines")
        out += [f"  story: {line}" for line in self.stories[: SHOWN * 4]]
        for email, problems in sorted(self.unequal.items())[:SHOWN]:
            out += [f"  unequal {email}: {p}" for p in problems[:SHOWN]]
        if not self.ok:
            out.append(f"  replay: CALSYNC_SIM_SEED={self.seed}; state at the end: {self.dump}")
        return out
