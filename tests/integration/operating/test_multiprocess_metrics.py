"""``/metrics`` in multi-process mode: counters bumped in other processes (uvicorn workers,
Dramatiq worker processes) sharing ``PROMETHEUS_MULTIPROC_DIR`` are merged, and
``calsync serve``/``calsync worker`` start from an empty directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from calsync.runtime import prepare_metrics_dir
from calsync.web.health import event_registry

BUMP = (
    "from calsync import metrics\n"
    "metrics.JOBS.labels(actor='sync_calendar', outcome='ok').inc({n})\n"
    "metrics.HTTP_REQUESTS.labels('/events', 'POST', '201').inc()\n"
)


def bump_in_a_process(directory: Path, n: int) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    subprocess.run([sys.executable, "-c", BUMP.format(n=n)], env=env, check=True, timeout=60)


def jobs_ok(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "calsync_jobs_total" and sample.labels["outcome"] == "ok"
    )


def test_counters_of_every_process_sharing_the_directory_are_summed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    assert prepare_metrics_dir() == directory
    # Given two processes (say, two Dramatiq worker processes) that ran jobs
    bump_in_a_process(directory, 2)
    bump_in_a_process(directory, 3)

    # Then the exposition counts both
    text = generate_latest(event_registry()).decode()
    assert jobs_ok(text) == 5
    assert 'calsync_http_requests_total{method="POST",route="/events",status="201"} 2.0' in text

    # And a new start wipes what an earlier run left
    assert prepare_metrics_dir() == directory
    assert not list(directory.glob("*.db"))
    assert jobs_ok(generate_latest(event_registry()).decode()) == 0


def test_without_the_variable_the_process_own_registry_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert prepare_metrics_dir() is None
    assert "calsync_http_requests_total" in generate_latest(event_registry()).decode()
