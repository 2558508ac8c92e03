"""The Prometheus alert rules in docs/deploy/prometheus parse, refer only to metrics and
labels that calsync exposes, and each has a runbook section in docs/operations.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.promql import catalogue, check

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "docs" / "deploy" / "prometheus" / "alerts.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
DURATION = re.compile(r"^\d+[smhd]$")


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    found: list[dict[str, Any]] = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"}, group.get("name")
        found += group["rules"]
    return found


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_rule_is_a_complete_alert() -> None:
    found = rules()
    assert len(found) >= 10
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names))
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["alert"].startswith("Calsync")
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert DURATION.match(rule["for"]), rule["alert"]


@pytest.mark.parametrize("rule", rules(), ids=lambda r: str(r["alert"]))
def test_every_expression_uses_real_metrics_and_labels(rule: dict[str, Any]) -> None:
    assert check(rule["expr"], rule["alert"], catalogue()) == []


@pytest.mark.parametrize("rule", rules(), ids=lambda r: str(r["alert"]))
def test_every_alert_has_its_runbook_in_the_operations_guide(rule: dict[str, Any]) -> None:
    runbook = rule["annotations"]["runbook"]
    path, _, anchor = runbook.partition("#")
    assert (ROOT / path) == OPERATIONS
    assert anchor == rule["alert"].lower()
    assert anchor in anchors(OPERATIONS.read_text()), f"no section {rule['alert']}"
