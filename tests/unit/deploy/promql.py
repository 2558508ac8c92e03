"""What PromQL in the shipped dashboard and alert rules refers to, checked against calsync's
metric catalogue: the event metrics of ``calsync.metrics`` and the state metrics of
``calsync.web.state_metrics``.

Not a PromQL parser: it finds metric names (``calsync_...``), the label names of their
selectors and of ``by``/``without`` clauses, which is what goes stale when code changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prometheus_client.metrics import MetricWrapperBase

from calsync import metrics
from calsync.web.state_metrics import STATE_METRICS

#: Sample suffixes prometheus-client exposes per metric type, and labels they add.
_SUFFIXES: dict[str, dict[str, tuple[str, ...]]] = {
    "counter": {"_total": (), "_created": ()},
    "histogram": {"_bucket": ("le",), "_count": (), "_sum": (), "_created": ()},
    "gauge": {"": ()},
    "summary": {"_count": (), "_sum": (), "_created": ()},
}

_METRIC = re.compile(r"\b(calsync_[a-zA-Z0-9_]+)\b\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def catalogue() -> dict[str, frozenset[str]]:
    """Every sample name calsync can expose, with its label names."""
    names: dict[str, frozenset[str]] = {}
    for wrapper in vars(metrics).values():
        if not isinstance(wrapper, MetricWrapperBase):
            continue
        labels = tuple(wrapper._labelnames)
        for family in wrapper.describe():
            for suffix, extra in _SUFFIXES[family.type].items():
                names[family.name + suffix] = frozenset(labels + extra)
    for name, labels in STATE_METRICS.items():
        names[name] = frozenset(labels)
    return names


@dataclass(frozen=True)
class Problem:
    where: str
    what: str


def check(expr: str, where: str, known: dict[str, frozenset[str]]) -> list[Problem]:
    """The unknown metric names and label names in `expr`."""
    problems: list[Problem] = []
    used = _METRIC.findall(expr)
    if not used:
        problems.append(Problem(where, "refers to no calsync metric"))
    labels_in_scope: set[str] = set()
    for name, selector in used:
        if name not in known:
            problems.append(Problem(where, f"unknown metric {name}"))
            continue
        labels_in_scope |= known[name]
        for label in _MATCHER.findall(selector or ""):
            if label not in known[name]:
                problems.append(Problem(where, f"{name} has no label {label}"))
    for group in _GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in group.split(","))):
            if label not in labels_in_scope:
                problems.append(Problem(where, f"grouping by unknown label {label}"))
    if expr.count("(") != expr.count(")"):
        problems.append(Problem(where, "unbalanced parentheses"))
    return problems
