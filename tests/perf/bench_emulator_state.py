"""Benchmark the emulator's state file (``calsync dev``): prints figures, asserts nothing.

Run: ``PYTHONPATH=. .venv/bin/python tests/perf/bench_emulator_state.py [--events 1000 5000]``

For each size: one calendar with that many events (200-character descriptions) written
through the API of an in-memory emulator, then ten saves of the whole world, split into
the two steps of ``StateFile.save``: the encoding (``snapshot.encode``: the first one
encodes every event version, later ones reuse the texts of versions already encoded, as
a save after one write does) and the atomic write with its fsyncs. Each changing request
in ``calsync dev`` pays one save.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

from calsync.emulator import snapshot
from calsync.emulator.persistence import _write_atomically
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl

ROUNDS = 10


def world(server: EmulatorServer, events: int) -> None:
    with EmulatorControl(server.url) as control:
        token = control.create_user("bench@example.com")["access_token"]
    with httpx.Client(
        base_url=f"{server.url}/calendar/v3/calendars/primary",
        headers={"Authorization": f"Bearer {token}"},
    ) as google:
        for number in range(events):
            google.post(
                "/events",
                json={
                    "summary": f"event {number}",
                    "description": "x" * 200,
                    "start": {"dateTime": "2026-12-01T09:00:00Z"},
                    "end": {"dateTime": "2026-12-01T10:00:00Z"},
                },
            ).raise_for_status()


def measure(events: int) -> None:
    with EmulatorServer() as server:
        world(server, events)
        path = Path(tempfile.mkdtemp()) / "emulator-state.json"
        texts = snapshot.EventTexts()
        steps: dict[str, list[float]] = {"first encode": [], "encode": [], "write": []}
        for round_number in range(ROUNDS):
            started = time.perf_counter()
            encoded = snapshot.encode(server.state, texts)
            done_encoding = time.perf_counter()
            _write_atomically(path, encoded)
            written = time.perf_counter()
            steps["first encode" if round_number == 0 else "encode"].append(done_encoding - started)
            steps["write"].append(written - done_encoding)
        figures = ", ".join(
            f"{name} {statistics.median(values) * 1000:.1f} ms" for name, values in steps.items()
        )
        print(f"{events} events ({path.stat().st_size / 1e6:.2f} MB): median {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1000, 5000])
    for events in parser.parse_args().events:
        measure(events)


if __name__ == "__main__":
    main()
