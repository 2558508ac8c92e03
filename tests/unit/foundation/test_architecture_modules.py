"""Every module of ``calsync/`` is named in docs/architecture.md's module tables (issue 20 item 8).

A reader who finds a file should find what it owns in docs/architecture.md, so a module
added or renamed without its row fails here. What counts as named, for a module
``calsync.a.b.c`` (``__init__`` and ``__main__`` files are their package's):

- a row of the "Modules" table whose first cell names it, `` `calsync.a.b.c` ``; or
- a row whose first cell names one of its packages (`` `calsync.a` `` or `` `calsync.a.b` ``)
  and whose text names the module in backticks, by its last name (`` `c` ``) or by its
  path from that package (`` `b.c` ``, `` `b/c` ``, `` `b/c.py` ``); or
- a table under a heading that names its package in backticks (the sync engine's
  table, "The sync engine (`calsync.sync`)") whose first cell is `` `c` ``.

The match is by name within the package's row, so a short name that two subpackages
share (``errors``) is named for both by one mention: the test catches a module nobody
mentions, not a mention that describes the wrong one.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "calsync"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
_TICKED = re.compile(r"`([^`]+)`")
_PACKAGE_HEADING = re.compile(r"^#+ .*\(`(calsync(?:\.\w+)*)`\)\s*$")


def _modules() -> list[str]:
    """The dotted names of calsync's modules, packages' ``__init__``/``__main__`` left out."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        names.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return names


def _section(text: str, heading: str) -> list[str]:
    """The lines of the ``## heading`` section, up to the next ``## `` heading."""
    lines = text.splitlines()
    start = lines.index(f"## {heading}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _rows(lines: list[str]) -> list[tuple[set[str], set[str]]]:
    """Each table row as (the backticked names of its first cell, those of the whole row)."""
    rows = []
    for line in lines:
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        rows.append((set(_TICKED.findall(first)), set(_TICKED.findall(line))))
    return rows


def _package_tables(text: str) -> dict[str, set[str]]:
    """The first cells of the tables under a heading naming a package, by package."""
    named: dict[str, set[str]] = {}
    package = None
    for line in text.splitlines():
        if line.startswith("#"):
            match = _PACKAGE_HEADING.match(line)
            package = match.group(1) if match else None
        elif package and line.startswith("| `"):
            named.setdefault(package, set()).update(_TICKED.findall(line.split("|")[1]))
    return named


def _named(module: str, rows: list[tuple[set[str], set[str]]], tables: dict[str, set[str]]) -> bool:
    """Whether the module tables name ``module`` (the rules of this file's docstring)."""
    parts = module.split(".")
    for first, everything in rows:
        if module in first:
            return True
        for depth in range(2, len(parts)):
            if ".".join(parts[:depth]) not in first:
                continue
            rest = parts[depth:]
            spelled = {parts[-1], ".".join(rest), "/".join(rest), "/".join(rest) + ".py"}
            if spelled & everything:
                return True
    return parts[-1] in tables.get(".".join(parts[:-1]), set())


def test_every_module_is_in_the_module_tables() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    rows = _rows(_section(text, "Modules"))
    tables = _package_tables(text)
    missing = [module for module in _modules() if not _named(module, rows, tables)]
    assert not missing, f"docs/architecture.md's module tables do not name: {missing}"


def test_an_unnamed_module_is_found() -> None:
    # The check itself: a module no row names is missing, one its package's row names is not
    rows = [({"calsync.sync"}, {"calsync.sync", "pull"})]
    assert _named("calsync.sync.pull", rows, {})
    assert not _named("calsync.sync.write_back", rows, {})
    assert _named("calsync.sync.write_back", rows, {"calsync.sync": {"write_back"}})
    assert not _named("calsync.web.pull", rows, {})
