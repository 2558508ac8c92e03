"""Logging set-up for calsync's processes: one JSON object per line on stderr.

Every line carries the fields an operator filters on when they are known: ``trace_id``
and ``span_id`` of the current OpenTelemetry span, and ``request_id``, ``user_id``,
``calendar_id``, ``event_id`` and ``job`` from :func:`log_context` (the request-id
middleware sets ``request_id``, and jobs a request queued carry it on; the job middleware
sets ``job`` and the ids in a job's arguments; use cases add what they learn). Any other
``extra`` of a record becomes a field of its own (a dataclass as an object), so values
are logged as fields, never as Python reprs inside the message. Every process logs
through :func:`configure_logging`, third-party loggers included (uvicorn's access lines
become ``client``, ``method``, ``path``, ``http_version`` and ``status`` fields).

A redaction pass over each line's text is the last line of defence against
secrets: bearer tokens, ``access_token``/``refresh_token``/``client_secret``-style
values and JWTs become ``[redacted]``. It is not a licence to log secrets: calsync does
not, and a test greps the logs of a whole run for the tokens it used.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from opentelemetry import trace

__all__ = [
    "CONTEXT_FIELDS",
    "ContextFilter",
    "JSONFormatter",
    "bind_context",
    "bind_request_id",
    "configure_logging",
    "current_context",
    "log_context",
    "redact",
    "reset_context",
]

#: Record attributes that become JSON fields when set.
CONTEXT_FIELDS: Final = (
    "request_id",
    "user_id",
    "calendar_id",
    "event_id",
    "job",
    "trace_id",
    "span_id",
)
#: The ones :func:`log_context` may set (trace and span ids come from the current span).
BINDABLE: Final = frozenset({"request_id", "user_id", "calendar_id", "event_id", "job"})
#: The attributes every `logging.LogRecord` has: not ``extra`` fields.
_RECORD_ATTRIBUTES: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("calsync_log_context", default=_EMPTY)


def current_context() -> Mapping[str, str]:
    """The fields :func:`log_context` set for the running code (read-only)."""
    return _context.get()


def bind_context(**fields: object) -> Token[Mapping[str, str]]:
    """Add ``fields`` (``None`` values are left out) to the log context until
    :func:`reset_context` with the returned token. For code that cannot use a ``with``
    block (middleware hooks); prefer :func:`log_context`.

    Raises:
        ValueError: a field that is not one of :data:`BINDABLE`.
    """
    unknown = set(fields) - BINDABLE
    if unknown:
        raise ValueError(f"not log context fields: {', '.join(sorted(unknown))}")
    merged = dict(_context.get())
    merged.update({k: str(v) for k, v in fields.items() if v is not None})
    return _context.set(MappingProxyType(merged))


def bind_request_id(request_id: str) -> Token[Mapping[str, str]]:
    """:func:`bind_context` of ``request_id`` alone, for the request-id middleware that
    every HTTP request goes through (no field-name checks to make)."""
    current = _context.get()
    merged = {"request_id": request_id} if not current else {**current, "request_id": request_id}
    return _context.set(MappingProxyType(merged))


def reset_context(token: Token[Mapping[str, str]]) -> None:
    """Undo the :func:`bind_context` that returned ``token``."""
    _context.reset(token)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Records logged inside the block (in this thread or task) carry ``fields``."""
    token = bind_context(**fields)
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Stamps each record with the log context and the current span's ids.

    Values passed explicitly (``extra={"calendar_id": ...}``) win over the context.
    Attach it to a handler; it never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        if getattr(record, "trace_id", None) is None:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                record.trace_id = format(context.trace_id, "032x")
                record.span_id = format(context.span_id, "016x")
        return True


_SECRET_KEYS = r"access_token|refresh_token|id_token|client_secret|channel_token|password"  # noqa: S105 - names
_REDACTIONS: Final = (
    # Authorization: Bearer <token>
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1[redacted]"),
    # key=value, key: value, "key": "value" (query strings, form bodies, JSON, reprs)
    (
        re.compile(rf"(?i)(\b(?:{_SECRET_KEYS})\b['\"]?\s*[:=]\s*['\"]?)[^'\"&\s,;}}]+"),
        r"\1[redacted]",
    ),
    # the OAuth callback's one-time code and signed state in a logged URL
    (re.compile(r"([?&](?:code|state)=)[^&\s'\"]+"), r"\1[redacted]"),
    # JWTs (header.payload.signature, base64url; the header always starts with eyJ)
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted]"),
)


def redact(text: str) -> str:
    """``text`` with bearer tokens, secret-named values and JWTs replaced."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON line with the fields an operator filters on; the
    message and exception text are passed through :func:`redact`."""

    CONTEXT_FIELDS = CONTEXT_FIELDS

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in self.CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = str(value)
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES and name not in entry and not name.startswith("_"):
                entry[name] = _field(value)
        if record.name == "uvicorn.access":
            entry.update(_access_fields(record))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def _field(value: object) -> object:
    """A JSON value for an ``extra`` value: dataclasses become objects, the rest stays
    as JSON has it or becomes its text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _field(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_field(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _field(v) for k, v in value.items()}
    return redact(str(value))


def _access_fields(record: logging.LogRecord) -> dict[str, object]:
    """uvicorn's access line (``'%s - "%s %s HTTP/%s" %d'``) as fields; the path's query
    is redacted like the message."""
    args = record.args
    if not (isinstance(args, tuple) and len(args) == 5):
        return {}
    client, method, path, http_version, status = args
    return {
        "client": str(client),
        "method": str(method),
        "path": redact(str(path)),
        "http_version": str(http_version),
        "status": status,
    }


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines at ``level``, stamped with
    the log context and trace ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, quieter in _QUIETER.items():
        logging.getLogger(name).setLevel(max(quieter, root.level))


#: Loggers whose INFO lines say nothing an operator acts on: Alembic lists its plugins
#: when a process first reads the migrations (a readiness check does).
_QUIETER: Final = {"alembic.runtime.plugins": logging.WARNING}
