"""The probes a load benchmark runs beside its load: a request every few milliseconds on a
keep-alive client (latencies kept), and a connection reused after idles around 5 s."""

from __future__ import annotations

import random
import statistics
import threading
import time
from typing import Any

import httpx2 as httpx


class Probe(threading.Thread):
    """Sends one request every `period` seconds on a keep-alive client; keeps latencies."""

    def __init__(self, name: str, send: Any, period: float = 0.02) -> None:
        super().__init__(name=name, daemon=True)
        self.send = send
        self.period = period
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    status = self.send(client)
                    if status >= 300:
                        self.failures.append(str(status))
                except httpx.HTTPError as exc:
                    self.failures.append(type(exc).__name__)
                took = time.perf_counter() - started
                self.latencies.append(took)
                self.stop.wait(max(0.0, self.period - took))


class KeepAliveProbe(threading.Thread):
    """Reuses one connection after idles around 5 s (uvicorn's default keep-alive)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.attempts = 0
        self.dropped: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        rng = random.Random()
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    client.get(self.url)
                except httpx.HTTPError as exc:
                    self.dropped.append(type(exc).__name__)
                self.attempts += 1
                self.stop.wait(rng.uniform(4.85, 5.0))


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms ({len(values)} requests)"
    )
