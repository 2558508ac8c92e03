"""The house rules that keep calsync easy to read and change (issue 20; docs/architecture.md):

- no module in ``calsync/`` is over `MAX_MODULE_LINES` lines and no function over
  `MAX_FUNCTION_LINES` (from its ``def`` to its last line, docstring included), but
  those listed below with the reason they still are; an entry that no longer exceeds
  fails too, so the lists only shrink;
- nothing outside ``calsync/store`` builds SQL: the statements live in the store, behind
  functions named for what they do (decisions HA1-HA2, HF1-HF3), but for the exceptions
  of `SQL_EXCEPTIONS`, which docs/architecture.md lists with their reasons; an entry
  that no longer builds any fails too, so the list only shrinks. ``calsync/sync`` has no
  exception at all;
- a provider knows no database: nothing in ``calsync/providers`` imports ``calsync.store``
  (issue 20 item 7, decision HF4);
- no import cycle through the services: nothing imports ``calsync.bootstrap`` or
  ``calsync.services`` for the type checker only, and ``calsync.services`` loads no
  use case (issue 20 item 5, decision HF5);
- the layers import one way (decisions HE3, HE4): ``calsync/web`` imports no provider
  code (``calsync.providers``) but the sign-in's OAuth (`WEB_PROVIDER_IMPORTS`), and the
  use cases of ``calsync/events`` import nothing of ``calsync/web`` but the listed
  (`EVENTS_WEB_IMPORTS`); these lists only shrink too.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "calsync"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

#: Modules still over `MAX_MODULE_LINES`, outside the sync engine (issue 20 splits them).
LONG_MODULES: dict[str, str] = {}

#: Functions still over `MAX_FUNCTION_LINES` (module path:qualified name), outside the
#: sync engine.
LONG_FUNCTIONS: dict[str, str] = {}

#: Modules outside ``calsync/store`` allowed to build SQL or to hold the store's ORM rows,
#: with the reason (docs/architecture.md, "Who builds SQL"). ``calsync/sync`` has none.
SQL_EXCEPTIONS: dict[str, str] = {
    "calsync/events/upkeep.py": "listens to the session's commits (sqlalchemy.event) to "
    "queue the read model's upkeep; events/ moves with another change",
    "calsync/jobs.py": "the heartbeat actor's upsert of the queue heartbeat row, inside "
    "declare_jobs, which another change splits",
    "calsync/notify/deliveries.py": "claims NotificationDelivery rows and finishes them "
    "in place (ORM rows changed outside the store)",
    "calsync/notify/notices.py": "serialises the NotificationDelivery rows it is given",
    "calsync/notify/preferences.py": "reads NotificationPreference rows into Preferences",
    "calsync/notify/reminders.py": "plans reminders from the store's Event rows",
    "calsync/notify/web_push.py": "sends to the PushSubscription rows it is given",
    "calsync/web/routes/admin.py": "the admin's changes to a User row it loaded",
}

#: Modules of ``calsync/web`` that import provider code, with the reason: the OAuth code
#: exchange is the web layer's one call to Google (docs/architecture.md).
WEB_PROVIDER_IMPORTS: dict[str, str] = {
    "calsync/web/routes/auth.py": "the sign-in: Google's OAuth code exchange",
    "calsync/web/routes/me.py": "whether the stored OAuth grant covers the calendar scope",
}

#: Modules of ``calsync/events`` that import from ``calsync/web``, with the reason.
EVENTS_WEB_IMPORTS: dict[str, str] = {}

#: What a module outside the store may import from SQLAlchemy: types and errors, no
#: statement (``"*"``: any name of that module).
SQLALCHEMY_ALLOWED = {
    "sqlalchemy": {"Row"},
    "sqlalchemy.engine": {"Engine"},
    "sqlalchemy.orm": {"Session", "sessionmaker"},
    "sqlalchemy.exc": {"*"},
}
#: What a module outside the store may import from ``calsync.store.tables``: the clock
#: and value vocabularies, no table and no ORM row.
TABLES_ALLOWED = {"utcnow", "DELIVERY_STATUSES", "NOTICE_KINDS"}
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


def long_modules(modules: Iterable[tuple[str, str]] | None = None) -> dict[str, int]:
    """Modules of calsync (or of `modules`: (path, text)) over `MAX_MODULE_LINES`, with
    their lengths."""
    sizes = {path: len(text.splitlines()) for path, text in modules or _modules()}
    return {path: size for path, size in sizes.items() if size > MAX_MODULE_LINES}


def long_functions(modules: Iterable[tuple[str, str]] | None = None) -> dict[str, int]:
    """Functions of calsync (or of `modules`: (path, text)) over `MAX_FUNCTION_LINES`
    (``path:qualname``), with lengths."""
    found = {}
    for path, text in modules or _modules():
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
                if a.name not in allowed and "*" not in allowed
            ]
        elif isinstance(node, ast.ImportFrom) and node.module == "calsync.store.tables":
            found += [
                f"{line}: the store's {a.name}" for a in node.names if a.name not in TABLES_ALLOWED
            ]
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


def imported(path: str, text: str) -> set[str]:
    """Every module the module at `path` imports (``from x import y`` counts ``x`` and
    ``x.y``, as ``y`` may be a module), at any depth (imports inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text, path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def importers(package: str, forbidden: str) -> set[str]:
    """The modules under `package` (a path) that import `forbidden` or a module in it."""
    return {
        path
        for path, text in _modules()
        if path.startswith(package)
        and any(m == forbidden or m.startswith(forbidden + ".") for m in imported(path, text))
    }


def test_the_web_layer_imports_no_provider_code_but_the_sign_in() -> None:
    found = importers("calsync/web/", "calsync.providers")
    assert sorted(found - set(WEB_PROVIDER_IMPORTS)) == [], "go through a use case or a port"
    assert sorted(set(WEB_PROVIDER_IMPORTS) - found) == [], "no longer: drop it from the list"


def test_the_event_use_cases_import_nothing_of_the_web_layer_but_the_listed() -> None:
    found = importers("calsync/events/", "calsync.web")
    assert sorted(found - set(EVENTS_WEB_IMPORTS)) == [], "the web layer calls use cases"
    assert sorted(set(EVENTS_WEB_IMPORTS) - found) == [], "no longer: drop it from the list"


def test_the_import_check_sees_every_form() -> None:
    sample = (
        "import calsync.providers.google.ids\n"
        "from calsync.providers.google import ids\n"
        "def f():\n"
        "    from calsync.web.errors import APIError\n"
    )
    found = imported("sample.py", sample)
    assert {"calsync.providers.google.ids", "calsync.web.errors"} <= found
    assert "calsync.providers.google.ids" in imported("s.py", sample.splitlines()[1])


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


def test_nothing_outside_the_store_builds_sql_but_the_listed_modules() -> None:
    built = {
        path: sql_built(path, text)
        for path, text in _modules()
        if not path.startswith("calsync/store/") and path not in SQL_EXCEPTIONS
    }
    assert {path: found for path, found in built.items() if found} == {}


def test_every_listed_exception_still_builds_sql() -> None:
    # An exception that was moved into the store leaves the list: it only shrinks.
    texts = dict(_modules())
    assert [path for path in SQL_EXCEPTIONS if not sql_built(path, texts[path])] == []


def test_the_sync_engine_has_no_sql_exception() -> None:
    assert [path for path in SQL_EXCEPTIONS if path.startswith("calsync/sync/")] == []


def store_imports(path: str, text: str) -> list[str]:
    """Where the module at `path` imports ``calsync.store`` (``line: module``)."""
    found = []
    for node in ast.walk(ast.parse(text, path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        if any(name == "calsync.store" or name.startswith("calsync.store.") for name in names):
            found.append(f"{node.lineno}: {names[0]}")
    return found


def test_providers_import_nothing_of_the_store() -> None:
    imports = {
        path: store_imports(path, text)
        for path, text in _modules()
        if path.startswith("calsync/providers/")
    }
    assert {path: found for path, found in imports.items() if found} == {}


def test_the_checks_see_what_they_forbid() -> None:
    # A check that finds nothing proves nothing: each forbidden form is found.
    sample = (
        "import sqlalchemy as sa\n"
        "from sqlalchemy import select\n"
        "from sqlalchemy.orm import Session\n"
        "from calsync.store.tables import Calendar, utcnow\n"
        "from sqlalchemy.exc import IntegrityError\n"
        "def f(session):\n"
        "    session.execute(sa.update(Calendar).returning(Calendar.id))\n"
        "    session.get(Calendar, 1)\n"
        "    return 'SELECT 1'\n"
    )
    assert len(sql_built("sample.py", sample)) == 7
    assert store_imports("p.py", "import calsync.store.db\nfrom calsync import store\n") == [
        "1: calsync.store.db",
        "2: calsync",
    ]
    assert store_imports("p.py", "from calsync.domain.secret import Secret\n") == []
    body = "    x = 1\n" * MAX_FUNCTION_LINES
    assert long_functions([("f.py", f"def long():\n{body}def short():\n    pass\n")]) == {
        "f.py:long": MAX_FUNCTION_LINES + 1
    }
    assert long_modules([("long.py", "x = 1\n" * (MAX_MODULE_LINES + 1))]) == {
        "long.py": MAX_MODULE_LINES + 1
    }
    assert long_modules([("short.py", "x = 1\n" * MAX_MODULE_LINES)]) == {}


def type_checking_imports(path: str, text: str) -> list[str]:
    """The calsync modules that the module at `path` imports only for the type checker
    (inside ``if TYPE_CHECKING:``): each is an import cycle kept out of sight."""
    found = []
    for node in ast.walk(ast.parse(text, path)):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found += [
                f"{inner.lineno}: {inner.module}"
                for inner in ast.walk(node)
                if isinstance(inner, ast.ImportFrom)
                and (inner.module or "").startswith(("calsync.bootstrap", "calsync.services"))
            ]
    return found


def test_nothing_imports_the_services_for_the_type_checker_only() -> None:
    # The use cases and actors import `Services` from calsync.services at run time: it
    # imports none of them, so there is no cycle to hide (issue 20 item 5, decision HF5).
    found = {path: type_checking_imports(path, text) for path, text in _modules()}
    assert {path: imports for path, imports in found.items() if imports} == {}
    sample = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from calsync.bootstrap import Services\n"
    )
    assert type_checking_imports("sample.py", sample) == ["3: calsync.bootstrap"]


def test_the_services_import_no_use_case() -> None:
    # Given a fresh interpreter, when it imports the services' type, then none of the
    # modules that take the services (the wiring, the actors, the use cases) was loaded.
    code = (
        "import sys, calsync.services\n"
        "print(' '.join(m for m in sys.modules if m.startswith('calsync.')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    takers = {"calsync.bootstrap", "calsync.jobs", "calsync.notify.jobs", "calsync.scheduler"}
    assert "calsync.services" in loaded
    # the token service is the one use case a provider needs, and it takes no services
    assert sorted(m for m in loaded if m in takers or m.startswith("calsync.sync.")) == [
        "calsync.sync.access_tokens"
    ]
