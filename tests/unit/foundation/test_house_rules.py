"""The house rules that keep calsync easy to read and change (issue 20; docs/architecture.md):

- no module in ``calsync/`` is over `MAX_MODULE_LINES` lines and no function over
  `MAX_FUNCTION_LINES` (from its ``def`` to its last line, docstring included), but
  those listed below with the reason they still are; an entry that no longer exceeds
  fails too, so the lists only shrink;
- ``calsync/sync`` builds no SQL: the statements live in ``calsync/store``, behind
  functions named for what they do (decisions HA1-HA2), but for the exceptions of
  `SQL_EXCEPTIONS`, which docs/architecture.md lists with their reasons.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "calsync"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

#: Modules still over `MAX_MODULE_LINES`, outside the sync engine (issue 20 splits them).
LONG_MODULES: dict[str, str] = {
    "calsync/cli.py": "the command's parser and commands; split with issue 20's renames",
    "calsync/domain/recurrence.py": "RFC 5545 expansion; its own issue (17) owns the split",
    "calsync/domain/rule_plans.py": "rule evaluation under a work limit (decision 36)",
    "calsync/providers/google/client.py": "the one Google client; split by resource later",
    "calsync/store/event_queries.py": "the API's reads; moves with the read model (item 1)",
    "calsync/store/events.py": "rows <-> Event and the pull's bulk writes; split later",
    "calsync/store/tables.py": "every table in one module, which Alembic's env reads",
    "calsync/web/event_input.py": "an API use case still in web/ (issue 20 item 1)",
    "calsync/web/event_reads.py": "an API use case still in web/ (issue 20 item 1)",
    "calsync/web/event_writes.py": "an API use case still in web/ (issue 20 item 1)",
    "calsync/web/models.py": "the OpenAPI models of every route",
    "calsync/web/openapi.py": "the OpenAPI document's builder",
}

#: Functions still over `MAX_FUNCTION_LINES` (module path:qualified name), outside the
#: sync engine.
LONG_FUNCTIONS: dict[str, str] = {
    "calsync/cli.py:_parser": "argparse declarations, one block per command",
    "calsync/config.py:_production_from_env": "one reading of every production setting",
    "calsync/domain/recurrence.py:_check": "issue 17's validation of a rule set",
    "calsync/domain/recurrence.py:occurrences": "issue 17's expansion loop",
    "calsync/domain/rule_plans.py:_families": "issue 17's grouping of rules",
    "calsync/emulator/listing.py:list_events": "the emulator's events.list",
    "calsync/jobs.py:declare_jobs": "every actor declared on one broker (issue 20 item 5)",
    "calsync/notify/changes.py:events_changed": "the change notices' rules",
    "calsync/notify/deliveries.py:_process": "claim, send and record one notice",
    "calsync/notify/reminders.py:plan_reminders": "the reminders' rules",
    "calsync/notify/reminders.py:replan_many": "the batched replanning of reminders",
    "calsync/store/events.py:insert_events": "the pull's COPY of new rows (decision S12)",
    "calsync/web/app.py:create_app": "the middleware stack in its order",
    "calsync/web/routes/auth.py:finish_google_sign_in": "sign-in (another change under way)",
    "calsync/web/routes/auth.py:_connect": "sign-in (another change under way)",
}

#: Modules of ``calsync/sync`` allowed to build SQL, with the reason (none today).
SQL_EXCEPTIONS: dict[str, str] = {}

#: What ``calsync/sync`` may import from SQLAlchemy: types and errors, no statement.
SQLALCHEMY_ALLOWED = {
    "sqlalchemy": {"Row"},
    "sqlalchemy.orm": {"Session"},
    "sqlalchemy.exc": {"DBAPIError", "SQLAlchemyError"},
}
#: Methods that run statements or change ORM rows, called on a session or connection.
_RUNS_SQL = {"execute", "scalar", "scalars", "query", "get", "add", "add_all", "delete", "merge"}
_SESSIONS = {"session", "connection", "conn"}
#: Statement-building methods (locks, RETURNING, ...), whatever they are called on.
_BUILDS_SQL = {"with_for_update", "returning", "on_conflict_do_update", "on_conflict_do_nothing"}
_SQL_TEXT = re.compile(r"^\s*(SELECT|UPDATE|INSERT|DELETE|WITH)\s")


def _modules() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path.read_text()


def _functions(
    body: list[ast.stmt], prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method, nested ones too, with its qualified name."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from _functions(node.body, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, f"{prefix}{node.name}.")


def long_modules() -> dict[str, int]:
    """Modules of calsync over `MAX_MODULE_LINES`, with their lengths."""
    sizes = {path: len(text.splitlines()) for path, text in _modules()}
    return {path: size for path, size in sizes.items() if size > MAX_MODULE_LINES}


def long_functions() -> dict[str, int]:
    """Functions of calsync over `MAX_FUNCTION_LINES` (``path:qualname``), with lengths."""
    found = {}
    for path, text in _modules():
        for name, node in _functions(ast.parse(text, path).body):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if size > MAX_FUNCTION_LINES:
                found[f"{path}:{name}"] = size
    return found


def sql_built(path: str, text: str) -> list[str]:
    """Where the module at `path` builds or runs SQL (``line: what``)."""
    found = []
    for node in ast.walk(ast.parse(text, path)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [
                f"{line}: import {a.name}" for a in node.names if a.name.startswith("sqlalchemy")
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            allowed = SQLALCHEMY_ALLOWED.get(node.module or "", set())
            found += [
                f"{line}: from {node.module} import {a.name}"
                for a in node.names
                if a.name not in allowed
            ]
        elif isinstance(node, ast.ImportFrom) and node.module == "calsync.store.tables":
            found.append(f"{line}: the store's tables")
        elif isinstance(node, ast.Attribute) and node.attr in _BUILDS_SQL:
            found.append(f"{line}: .{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _RUNS_SQL
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in _SESSIONS
        ):
            found.append(f"{line}: {node.func.value.id}.{node.func.attr}()")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _SQL_TEXT.match(node.value)
        ):
            found.append(f"{line}: SQL text")
    return found


def test_no_module_is_over_500_lines_but_the_listed_ones() -> None:
    long = long_modules()
    assert sorted(set(long) - set(LONG_MODULES)) == [], "split it along a seam"
    assert sorted(set(LONG_MODULES) - set(long)) == [], "no longer long: drop it from the list"


def test_no_function_is_over_60_lines_but_the_listed_ones() -> None:
    long = long_functions()
    assert sorted(set(long) - set(LONG_FUNCTIONS)) == [], "split it"
    assert sorted(set(LONG_FUNCTIONS) - set(long)) == [], "no longer long: drop it from the list"


def test_the_sync_engine_is_held_to_the_limits_without_exception() -> None:
    listed = [*LONG_MODULES, *LONG_FUNCTIONS]
    assert [name for name in listed if name.startswith("calsync/sync/")] == []


def test_the_sync_engine_builds_no_sql() -> None:
    built = {
        path: sql_built(path, text)
        for path, text in _modules()
        if path.startswith("calsync/sync/") and path not in SQL_EXCEPTIONS
    }
    assert {path: found for path, found in built.items() if found} == {}


def test_the_checks_see_what_they_forbid() -> None:
    # A check that finds nothing proves nothing: each forbidden form is found.
    sample = (
        "import sqlalchemy as sa\n"
        "from sqlalchemy import select\n"
        "from sqlalchemy.orm import Session\n"
        "from calsync.store.tables import Calendar\n"
        "def f(session):\n"
        "    session.execute(sa.update(Calendar).returning(Calendar.id))\n"
        "    session.get(Calendar, 1)\n"
        "    return 'SELECT 1'\n"
    )
    assert len(sql_built("sample.py", sample)) == 7
    assert long_functions()  # the listed ones
    assert "calsync/store/tables.py" in long_modules()
