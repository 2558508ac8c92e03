"""The fast path of ``POST /webhooks/google``: raw ASGI, in front of the whole app.

Google may push thousands of notifications a second. They carry everything in
``X-Goog-*`` headers and no body, and need none of what the API's middleware does
(authentication, per-user rate limits, routing), so `NotificationIntakeMiddleware` answers
exactly ``POST /webhooks/google`` itself, before any of it, and hands everything else to
the app unchanged. Per notification it reads the headers, verifies the channel against
the process's `ChannelCache` (no database round trip once a channel is known) and awaits
the group commit of `DirtyMarks` (`calsync.sync.notification_checks.receive`); in a storm,
a change of a calendar this process holds a lease on is answered before anything is
awaited (`notification_checks.settled`, decision HQ1). Its counts are added to the
metrics in bulk (`calsync.metric_tally`, decision HQ2).

Answers (this middleware is the path's only receiver: no route serves it, decisions N7):

- 202: a change recorded (its calendar marked dirty, a pull queued or already pending);
- 200: acknowledged or deliberately ignored: the ``sync`` handshake, a stopped channel,
  an unknown or forged one (no oracle for guessing ids);
- 400: ``X-Goog-Channel-ID`` or ``X-Goog-Resource-State`` missing; 413: a body over
  `MAX_BODY_BYTES` (Google sends none); both change nothing;
- 503 with ``Retry-After`` when PostgreSQL or Redis cannot record the notification, 500
  on a bug: 5xx only when nothing was recorded, so that Google retries.

It counts the answer in the HTTP request metrics and, while tracing is on, opens a
server span (tracer ``calsync.webhook``) whose context the queued pull is sent in, so a
trace goes from the notification to the pull job. It is added last, outside the
OpenTelemetry ASGI middleware too, so the webhook never pays for what it does not use.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable

from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync import metrics, tracing
from calsync.bootstrap import Services
from calsync.logs import bind_request_id, reset_context
from calsync.metric_tally import Tally
from calsync.sync.notification_checks import (
    ChannelCache,
    DirtyMarks,
    Intake,
    Notification,
    receive,
    settled,
)
from calsync.web.errors import error_response, unavailable_dependency, unavailable_response
from calsync.web.limits import payload_too_large_response
from calsync.web.request_id import id_source, request_id_of

__all__ = [
    "MAX_BODY_BYTES",
    "PATH",
    "IntakeFirst",
    "NotificationIntakeMiddleware",
    "notification_from_headers",
    "status_for",
]

log = logging.getLogger(__name__)

PATH = "/webhooks/google"
#: Calendar push messages have an empty body; anything bigger than this is not Google.
MAX_BODY_BYTES = 16_384
_MISSING_HEADERS = "X-Goog-Channel-ID and X-Goog-Resource-State are required"
_RECORDED = frozenset({Intake.QUEUED, Intake.COALESCED})
_REQUEST_ID = b"x-request-id"
_EMPTY = (b"content-length", b"0")
TRACER_NAME = "calsync.webhook"
#: Parsed notifications kept at most (forged ones churn the cache, never grow it)
_MAX_NOTES = 10_000


def status_for(outcome: Intake) -> int:
    """202 when a change was recorded, 200 when acknowledged or ignored."""
    return 202 if outcome in _RECORDED else 200


def notification_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> Notification | None:
    """The notification in ASGI headers (lower-case names); None when the channel id or
    the resource state is missing."""
    goog: dict[bytes, bytes] = {}
    for name, value in headers:
        if name.startswith(b"x-goog-"):
            goog[name] = value
    return _notification(goog)


def _notification(goog: dict[bytes, bytes]) -> Notification | None:
    """`notification_from_headers` of the ``x-goog-*`` headers already picked out."""
    channel_id = goog.get(b"x-goog-channel-id", b"").decode("latin-1").strip()
    state = goog.get(b"x-goog-resource-state", b"").decode("latin-1").strip()
    if not channel_id or not state:
        return None
    number = goog.get(b"x-goog-message-number", b"")
    return Notification(
        channel_id=channel_id,
        token=goog.get(b"x-goog-channel-token", b"").decode("latin-1").strip(),
        resource_id=goog.get(b"x-goog-resource-id", b"").decode("latin-1").strip(),
        state=state,
        message_number=int(number) if number.isdigit() and len(number) <= 20 else None,
    )


async def _answer(send: Send, status: int, header: tuple[bytes, bytes]) -> int:
    """Send an empty answer with `status` and the request id `header`; returns `status`."""
    await send({"type": "http.response.start", "status": status, "headers": [_EMPTY, header]})
    await send({"type": "http.response.body", "body": b""})
    return status


def _with_id(send: Send, header: tuple[bytes, bytes]) -> Send:
    """`send` adding the request id `header` to the answer (for the error answers)."""

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", ()) if h[0] != _REQUEST_ID]
            headers.append(header)
            message["headers"] = headers
        await send(message)

    return send_with_id


class _Tracing:
    """The webhook's tracer while tracing is on (`calsync.tracing.enabled`), else None.

    While tracing is off this is one boolean check; the tracer is fetched once per
    installed provider.
    """

    def __init__(self) -> None:
        self._provider: object = None
        self._tracer: trace.Tracer | None = None

    def tracer(self) -> trace.Tracer | None:
        if not tracing.enabled():
            return None
        provider = trace.get_tracer_provider()
        if provider is not self._provider or self._tracer is None:
            self._provider = provider
            self._tracer = provider.get_tracer(TRACER_NAME)
        return self._tracer


class NotificationIntakeMiddleware:
    """Answers ``POST /webhooks/google`` (see the module docstring); passes the rest on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        services: Services,
        cache: ChannelCache,
        marks: DirtyMarks,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.services = services
        self.cache = cache
        self.marks = marks
        self.max_body_bytes = max_body_bytes
        self._tracing = _Tracing()
        self._new_id = id_source()
        #: parsed notifications by their headers (Google repeats them for each change)
        self._notes: dict[tuple[bytes, bytes, bytes, bytes], Notification] = {}
        self._requests: dict[int, Counter] = {}
        self._latency = metrics.HTTP_LATENCY.labels(PATH, "POST")
        #: the answers' counts, added to the metrics in bulk (decision HQ2)
        self._tally = Tally()

    async def __call__(self, scope: Scope, receive_: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            if scope["type"] == "lifespan":
                send = self._closing_on_shutdown(send)
            await self.app(scope, receive_, send)
            return
        started = time.perf_counter()
        status = await self._answer(scope, receive_, send)
        counter = self._requests.get(status)
        if counter is None:
            counter = self._requests[status] = metrics.HTTP_REQUESTS.labels(
                PATH, "POST", str(status)
            )
        self._tally.inc(counter)
        self._tally.observe(self._latency, time.perf_counter() - started)

    def _closing_on_shutdown(self, send: Send) -> Send:
        """`send` for the lifespan: release the intake's connection before shutdown ends."""

        async def closing_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.marks.aclose()
                self._tally.flush()
            await send(message)

        return closing_send

    async def _answer(self, scope: Scope, receive_: Receive, send: Send) -> int:
        raw = scope["headers"]
        headers = dict(raw)
        if len(headers) != len(raw):  # a name repeated: the careful reading
            return await self._answer_repeated(scope, receive_, send)
        length = headers.get(b"content-length")
        declared = int(length) if length is not None and length.strip().isdigit() else None
        sent_id = headers.get(_REQUEST_ID)
        key = (
            headers.get(b"x-goog-channel-id", b""),
            headers.get(b"x-goog-channel-token", b""),
            headers.get(b"x-goog-resource-id", b""),
            headers.get(b"x-goog-resource-state", b""),
        )
        note = self._notes.get(key)
        if note is None:
            note = _notification({name: v for name, v in raw if name.startswith(b"x-goog-")})
            if note is not None:
                if len(self._notes) >= _MAX_NOTES:
                    self._notes.clear()
                self._notes[key] = dataclasses.replace(note, message_number=None)
        return await self._answer_note(
            scope,
            receive_,
            send,
            note,
            None if sent_id is None else sent_id.decode("latin-1"),
            declared,
            chunked=b"transfer-encoding" in headers,
        )

    async def _answer_repeated(self, scope: Scope, receive_: Receive, send: Send) -> int:
        """`_answer` for headers with a repeated name: the largest valid
        ``Content-Length``, a new request id when several were sent, the last of each
        ``X-Goog-*``."""
        goog: dict[bytes, bytes] = {}
        declared: int | None = None
        chunked = False
        sent_ids: list[bytes] = []
        for name, value in scope["headers"]:
            if name.startswith(b"x-goog-"):
                goog[name] = value
            elif name == b"content-length":
                if value.strip().isdigit():
                    declared = max(declared or 0, int(value))
            elif name == b"transfer-encoding":
                chunked = True
            elif name == _REQUEST_ID:
                sent_ids.append(value)
        sent_id = sent_ids[0].decode("latin-1") if len(sent_ids) == 1 else None
        note = _notification(goog)
        return await self._answer_note(
            scope, receive_, send, note, sent_id, declared, chunked=chunked
        )

    async def _answer_note(
        self,
        scope: Scope,
        receive_: Receive,
        send: Send,
        note: Notification | None,
        sent_id: str | None,
        declared: int | None,
        *,
        chunked: bool,
    ) -> int:
        """Answer `note` (None: the required headers are missing) under the request id
        `RequestIdMiddleware` would give (this path does not go through it)."""
        request_id = request_id_of(sent_id, self._new_id)
        header = (_REQUEST_ID, request_id.encode("latin-1"))
        if note is not None and not chunked and (declared or 0) <= self.max_body_bytes:
            outcome = self._settled(note)
            if outcome is not None:  # nothing awaited, logged or queued: no log context
                return await _answer(send, status_for(outcome), header)
        scope.setdefault("state", {})["request_id"] = request_id
        token = bind_request_id(request_id)
        try:
            if declared is not None:
                fits = declared <= self.max_body_bytes
            else:
                fits = not chunked or await self._chunked_body_fits(receive_)
            if not fits:
                await payload_too_large_response(self.max_body_bytes)(
                    scope, receive_, _with_id(send, header)
                )
                return 413
            if note is None:
                await error_response(400, _MISSING_HEADERS)(scope, receive_, _with_id(send, header))
                return 400
            try:
                outcome = await self._receive(note)
            except Exception as exc:  # anything unrecorded is a 5xx for Google
                dependency = unavailable_dependency(exc)
                if dependency is None:
                    log.exception("push notification not recorded")
                    await error_response(500, "internal error")(
                        scope, receive_, _with_id(send, header)
                    )
                    return 500
                log.warning("push notification not recorded: %s unavailable", dependency)
                await unavailable_response(dependency)(scope, receive_, _with_id(send, header))
                return 503
            return await _answer(send, status_for(outcome), header)
        finally:
            reset_context(token)

    def _settled(self, note: Notification) -> Intake | None:
        """`settled`'s outcome, while tracing is off (a traced notification has its span
        opened by `_receive`)."""
        if tracing.enabled():
            return None
        return settled(self.services, note, self.cache, self.marks, self._tally)

    async def _receive(self, note: Notification) -> Intake:
        tracer = self._tracing.tracer()
        if tracer is None:
            return await receive(self.services, note, self.cache, self.marks, tally=self._tally)
        with tracer.start_as_current_span(
            f"POST {PATH}",
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": "POST",
                "http.route": PATH,
                "calsync.push.state": note.state,
            },
        ) as span:
            outcome = await receive(
                self.services,
                note,
                self.cache,
                self.marks,
                otel_context.get_current(),
                tally=self._tally,
            )
            span.set_attribute("calsync.push.outcome", outcome.value)
            span.set_attribute("http.response.status_code", status_for(outcome))
            return outcome

    async def _chunked_body_fits(self, receive_: Receive) -> bool:
        """False when a chunked body reads over the limit; a body within the limit is
        ignored (left for the server to discard)."""
        seen = 0
        while True:
            message: Message = await receive_()
            if message["type"] != "http.request":
                return True  # the client went away; nothing more to read
            seen += len(message.get("body", b""))
            if seen > self.max_body_bytes:
                return False
            if not message.get("more_body", False):
                return True


class IntakeFirst(Starlette):
    """A Starlette app whose ``POST /webhooks/google`` is answered by a
    `NotificationIntakeMiddleware` in front of its whole middleware stack, Starlette's own error
    middleware included (the intake catches its own errors and sets its own request id):
    those layers cost the intake about a quarter of its CPU per notification (decision I3).

    `intake` (the middleware without its app) is set before the app first serves.
    """

    intake: Callable[[ASGIApp], NotificationIntakeMiddleware] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.intake is None else self.intake(stack)

    def put_intake_in_front(self, services: Services) -> None:
        """Answer Google's notifications for `services` in front of this app (`intake`),
        with the channel cache and dirty marks it shares through ``app.state``."""
        self.state.channel_cache = ChannelCache()
        self.state.dirty_marks = DirtyMarks()
        self.intake = functools.partial(
            NotificationIntakeMiddleware,
            services=services,
            cache=self.state.channel_cache,
            marks=self.state.dirty_marks,
        )
