"""The Grafana dashboard in docs/deploy/grafana is valid JSON whose queries use only metrics
(and labels) that calsync exposes, and it covers every one of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.promql import catalogue, check

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "docs" / "deploy" / "grafana" / "calsync.json"


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def expressions() -> list[tuple[str, str]]:
    return [
        (f"{panel['title']}/{target['refId']}", target["expr"])
        for panel in panels(load())
        for target in panel.get("targets", [])
    ]


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = load()
    assert dashboard["title"] == "calsync"
    assert dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["type"] in {"row", "timeseries", "stat", "table"}, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize(("where", "expr"), expressions())
def test_every_query_uses_real_metrics_and_labels(where: str, expr: str) -> None:
    assert check(expr, where, catalogue()) == []


def test_every_calsync_metric_is_on_the_dashboard() -> None:
    text = " ".join(expr for _, expr in expressions())
    families = {
        name.removesuffix(suffix)
        for name in catalogue()
        for suffix in ("_total", "_bucket")
        if name.endswith(suffix)
    } | {name for name in catalogue() if not name.endswith(("_count", "_sum", "_created"))}
    shown = {name for name in families if name in text}
    missing = {name for name in families if not any(n.startswith(name) for n in shown)}
    assert not missing, f"not on the dashboard: {sorted(missing)}"


def test_the_checker_catches_a_misspelt_metric_and_label() -> None:
    """Guards the tests above against checking nothing."""
    known = catalogue()
    assert check("rate(calsync_http_requests_totl[5m])", "x", known)
    assert check('sum by (route) (calsync_http_requests_total{rout="/"})', "x", known)
    assert check("sum by (nope) (calsync_queue_depth)", "x", known)
    assert not check('max by (queue) (calsync_queue_depth{queue="sync"})', "x", known)
