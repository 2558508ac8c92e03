"""JSON log lines with context and redaction; tracing that stays off unless asked for."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN

from calsync import tracing
from calsync.logs import ContextFilter, JSONFormatter, current_context, log_context, redact

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def line(message: str, *args: object, exc: bool = False, **extra: object) -> dict[str, str]:
    """What calsync's handler writes for one record (filter, then formatter)."""
    record = logging.LogRecord("calsync.test", logging.INFO, __file__, 1, message, args, None)
    if exc:
        try:
            raise ValueError(message % args if args else message)
        except ValueError:
            record.exc_info = sys.exc_info()
    for name, value in extra.items():
        setattr(record, name, value)
    ContextFilter().filter(record)
    parsed: dict[str, str] = json.loads(JSONFormatter().format(record))
    return parsed


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer ya29.a0AfH6SMBx-_.~+/token==", "ya29.a0AfH6SMBx-_.~+/token=="),
        ("body access_token=ya29.abc&expires_in=3599", "ya29.abc"),
        ('{"refresh_token": "1//0gLrefresh", "scope": "x"}', "1//0gLrefresh"),
        ("client_secret='calsync-dev-secret'", "calsync-dev-secret"),
        ("GET /auth/google/callback?state=s1gned&code=4/0AX4code HTTP/1.1", "4/0AX4code"),
        ("GET /auth/google/callback?state=s1gned&code=4/0AX4code HTTP/1.1", "s1gned"),
        (f"token {JWT} issued", JWT),
        (f"token {JWT} issued", JWT.split(".")[2]),
    ],
)
def test_redaction_removes_the_secret_and_keeps_the_rest(text: str, secret: str) -> None:
    cleaned = redact(text)

    assert secret not in cleaned
    assert "[redacted]" in cleaned


def test_redaction_leaves_ordinary_text_alone() -> None:
    text = "pulled 12 events of calendar 5f0c (sync_token kept, status code 200)"
    assert redact(text) == text


def test_a_line_is_json_with_the_message_redacted_also_in_the_exception() -> None:
    entry = line("refresh failed: refresh_token=%s", "1//secret", exc=True)

    assert entry["level"] == "info"
    assert entry["logger"] == "calsync.test"
    assert "1//secret" not in entry["message"]
    assert "1//secret" not in entry["exception"]
    assert "ValueError" in entry["exception"]


def test_log_context_fields_appear_inside_the_block_only() -> None:
    with log_context(user_id="u-1", calendar_id="c-2"):
        with log_context(event_id="e-3"):
            inner = line("inner")
        outer = line("outer")
    after = line("after")

    assert (inner["user_id"], inner["calendar_id"], inner["event_id"]) == ("u-1", "c-2", "e-3")
    assert "event_id" not in outer
    assert outer["calendar_id"] == "c-2"
    assert "user_id" not in after
    assert current_context() == {}


def test_explicit_extra_wins_over_the_context() -> None:
    with log_context(calendar_id="from-context"):
        entry = line("x", calendar_id="from-extra")
    assert entry["calendar_id"] == "from-extra"


def test_only_known_fields_can_be_bound() -> None:
    with pytest.raises(ValueError, match="password"), log_context(password="x"):
        pass


def test_trace_and_span_ids_come_from_the_current_span() -> None:
    exporter = tracing.install_memory_exporter()
    try:
        with tracing.span("work") as span:
            inside = line("inside")
        outside = line("outside")
    finally:
        tracing.uninstall_memory_exporter()

    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside
    assert exporter.get_finished_spans() == ()  # cleared when uninstalled


def test_spans_are_no_ops_while_tracing_is_off() -> None:
    assert not tracing.enabled()
    with tracing.span("anything") as span:
        assert span is INVALID_SPAN
        assert trace.get_current_span() is INVALID_SPAN


def test_an_error_marks_the_span_with_its_type_not_its_message() -> None:
    exporter = tracing.install_memory_exporter()
    try:
        with pytest.raises(RuntimeError), tracing.span("failing"):
            raise RuntimeError("refresh_token=1//secret")
        (failed,) = exporter.get_finished_spans()
    finally:
        tracing.uninstall_memory_exporter()

    assert failed.status.status_code is trace.StatusCode.ERROR
    assert (failed.attributes or {})["exception.type"] == "RuntimeError"
    assert "secret" not in repr(failed.to_json())


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "jaeger"},  # not supported: warned about, stays off
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"},
    ],
)
def test_tracing_stays_off_unless_an_exporter_is_asked_for(environ: dict[str, str]) -> None:
    assert tracing.configure_tracing("calsync-test", environ) is False
    assert not tracing.enabled()


def test_extra_values_are_fields_and_a_dataclass_is_an_object_not_a_repr() -> None:
    from calsync.notify.deliveries import DeliveryReport

    entry = line("notices delivered", report=DeliveryReport(sent=2, failed=1), attempt=3)
    assert entry["message"] == "notices delivered"
    assert entry["report"] == {"sent": 2, "failed": 1, "skipped": 0, "retrying": 0, "held": 0}
    assert entry["attempt"] == 3
    assert "DeliveryReport(" not in json.dumps(entry)


def test_uvicorns_access_line_becomes_fields_with_the_query_redacted() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.1:5000", "GET", "/auth/google/callback?code=secret1&state=s", "1.1", 302),
        None,
    )
    entry = json.loads(JSONFormatter().format(record))
    assert entry["method"] == "GET"
    assert entry["status"] == 302
    assert entry["path"] == "/auth/google/callback?code=[redacted]&state=[redacted]"
    assert "secret1" not in json.dumps(entry)


def test_a_request_id_is_a_context_field() -> None:
    with log_context(request_id="abc-1"):
        assert line("hello")["request_id"] == "abc-1"


def test_uvicorns_coloured_copy_of_the_message_is_left_out() -> None:
    entry = line("Started server process [%d]", 7, color_message="\x1b[36m7\x1b[0m")
    assert entry["message"] == "Started server process [7]"
    assert "color_message" not in entry
