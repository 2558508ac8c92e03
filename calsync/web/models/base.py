"""What every model of the API's bodies shares: `Closed` (request bodies and most
answers: an unknown field is an error) and `Open` models, an optional text field
(`optional_text`), and the string formats several resources use."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class Closed(BaseModel):
    """A model whose schema says ``additionalProperties: false``."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A model whose answers may carry keys it does not list."""

    model_config = ConfigDict(extra="allow")


def optional_text(max_length: int | None = None, description: str | None = None) -> Any:
    """An optional string field, at most `max_length` characters."""
    return Field(default=None, max_length=max_length, description=description)


Email = Annotated[str, Field(json_schema_extra={"format": "email"})]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
