"""One HTTP client library: httpx2 (and its transport httpcore2), which Starlette's test
client and Authlib's OAuth client already use; never encode's httpx beside it
(docs/decisions.md L3)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: (aiohttp is gcal_sync's, the peer library benchmarked in tests/perf/bench_peer.py.)
OTHER_CLIENTS = {"httpx", "httpcore", "respx", "requests", "urllib3"}


def _requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0].split("[")[0]
        for mark in "<>=!~ ":
            name = name.split(mark)[0]
        names.add(name.strip().lower())
    return names


def test_the_package_depends_on_httpx2_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _requirement_names(project["dependencies"])
    dev = _requirement_names(project["optional-dependencies"]["dev"])
    assert {"httpx2", "httpcore2"} <= runtime
    assert runtime & {"httpx", "httpcore", "respx", "requests"} == set()
    # respx (the workplace's HTTP mock) is a dev tool only, and brings httpx with it
    assert dev & {"httpx", "httpcore", "requests"} == set()


def test_no_module_imports_another_http_client() -> None:
    offenders = []
    for folder in ("calsync", "workers", "tests", "migrations"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                offenders += [
                    f"{path.relative_to(ROOT)}: {name}"
                    for name in names
                    if name.split(".")[0] in OTHER_CLIENTS
                ]
    assert offenders == []
