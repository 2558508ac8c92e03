"""Readiness: the database answers and is migrated to this code's head, the broker answers.

One definition for the API's ``/readyz``, ``calsync ready`` and the worker pod's
``/readyz`` (served by its metrics process, `workers.metrics_server`). It needs only an
engine and the broker's Redis client, so a process can check it without building the
services (whose imports cost a probe seconds of CPU).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from calsync.store.migrate import ping, schema_state

__all__ = ["dependency_checks"]


def dependency_checks(engine: Engine, redis_client: Any | None) -> dict[str, str]:
    """Each dependency's state: ``ok`` or why not (``behind``, ``unavailable (...)``).
    `redis_client` ``None`` is the in-process broker, which is always there."""
    checks: dict[str, str] = {}
    try:
        ping(engine)
        checks["database"] = "ok"
        state = schema_state(engine)
        checks["migrations"] = "ok" if state in {"current", "ahead"} else state
    except SQLAlchemyError as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
        checks["migrations"] = "unknown"
    checks["broker"] = _ping(redis_client)
    return checks


def _ping(client: Any | None) -> str:
    if client is None:
        return "ok"
    try:
        client.ping()
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"
    return "ok"
