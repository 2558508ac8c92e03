"""Operations: ``/healthz`` (`Health`), ``/readyz`` (`Readiness`) and
``/openapi.json`` (`OpenAPIDocument`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from calsync.web.models.base import Closed, Open


class Health(Closed):
    status: Literal["ok"]


class Readiness(Closed):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="each dependency: ok, or what is wrong")


class OpenAPIDocument(Open):
    """This document."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]
