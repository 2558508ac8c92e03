"""Real receivers for notices: an aiosmtpd SMTP server and an HTTP server on 127.0.0.1,
plus helpers to create users, calendars and event rows on real databases."""

from __future__ import annotations

import email
import email.policy
import http.server
import ipaddress
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, cast

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session, sessionmaker

from calsync.config import Settings
from calsync.domain.models import Event
from calsync.notify.addresses import AddressGuard, Resolver, system_resolver
from calsync.notify.outbound import OutboundHttp
from calsync.notify.outgoing_webhooks import WebhookSender
from calsync.notify.senders import Dispatcher, Sender
from calsync.notify.smtp import SmtpSender, parse_smtp_url
from calsync.notify.web_push import WebPushSender, load_vapid_key
from calsync.store.db import make_engine, make_session_factory
from calsync.store.events import event_columns, replace_attendees
from calsync.store.secrets import SecretBox
from calsync.store.tables import Calendar, User
from calsync.store.tables import Event as EventRow
from tests.integration.accounts.conftest import App, running_app
from tests.integration.notify.tls import Authority, make_authority

pytestmark = pytest.mark.integration


# --- SMTP ---------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server received, parsed."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, mailbox)
    finally:
        controller.stop()


# --- HTTP receiver --------------------------------------------------------------------------


@dataclass
class Received:
    """One request; header names lower-cased."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTPS server (or plain HTTP) on a loopback address that records POSTs and answers
    from ``statuses`` (201 when empty), with a ``Location`` header when ``location`` is set."""

    host: str
    port: int
    authority: Authority
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    location: str | None = None
    tls: bool = True
    #: Answer 413 to a body longer than this, as push services do past 4096 bytes
    max_body: int | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return make_authority(tmp_path_factory.mktemp("tls"))


Listen = Callable[..., Receiver]


@pytest.fixture
def listen(authority: Authority) -> Iterator[Listen]:
    """Starts receivers: ``listen(host="127.0.0.1", port=0, tls=True)``; all are stopped
    after the test."""
    servers: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(host: str = "127.0.0.1", port: int = 0, *, tls: bool = True) -> Receiver:
        server = http.server.ThreadingHTTPServer((host, port), _Handler)
        if tls:
            server.socket = authority.server_context().wrap_socket(server.socket, server_side=True)
        found = Receiver(host, int(server.server_address[1]), authority, tls=tls)
        server.receiver = found  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return found

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def receiver(listen: Listen) -> Receiver:
    """One HTTPS receiver on 127.0.0.1."""
    return listen()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        receiver.requests.append(Received(self.path, headers, body))
        if receiver.max_body is not None and len(body) > receiver.max_body:
            self.send_response(413)
        else:
            self.send_response(receiver.statuses.pop(0) if receiver.statuses else 201)
        if receiver.location is not None:
            self.send_header("Location", receiver.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def receiving_http(*receivers: Receiver, resolver: Resolver = system_resolver) -> OutboundHttp:
    """The production client with exactly ``receivers`` counted as public and the tests'
    authority trusted; ``resolver`` replaces DNS."""
    guard = AddressGuard(
        resolver=resolver,
        test_listeners=frozenset((ipaddress.ip_address(r.host), r.port) for r in receivers),
    )
    if not receivers:
        return OutboundHttp(guard)
    return OutboundHttp(guard, ssl_context=receivers[0].authority.client_context())


# --- databases and rows -------------------------------------------------------------------


@pytest.fixture
def pg_sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_session_factory(engine)
    engine.dispose()


EVENTS = cast(sa.Table, EventRow.__table__)
BOX = SecretBox([SecretBox.generate_key()])


def dispatcher_for(
    *,
    smtp: SmtpServer | None = None,
    vapid_key: str | None = None,
    receivers: Sequence[Receiver] = (),
    http: OutboundHttp | None = None,
    box: SecretBox = BOX,
) -> Dispatcher:
    """The real senders; webhooks and pushes may reach ``receivers`` and nothing else on
    this machine (or go through ``http`` when given)."""
    http = http or receiving_http(*receivers)
    senders: dict[str, Sender] = {"webhook": WebhookSender(box, http)}
    if smtp is not None:
        senders["email"] = SmtpSender(parse_smtp_url(smtp.url), "calsync@notices.test")
    if vapid_key is not None:
        senders["push"] = WebPushSender(load_vapid_key(vapid_key), "mailto:ops@notices.test", http)
    return Dispatcher(senders)


def add_user(session: Session, email: str, timezone: str = "UTC") -> uuid.UUID:
    user = User(email=email, timezone=timezone, display_name=email.split("@")[0].title())
    session.add(user)
    session.flush()
    return user.id


def add_calendar(session: Session, user_id: uuid.UUID) -> uuid.UUID:
    calendar = Calendar(user_id=user_id, provider_calendar_id="primary", access_role="owner")
    session.add(calendar)
    session.flush()
    return calendar.id


def add_event(
    session: Session,
    event: Event,
    *,
    user_id: uuid.UUID,
    calendar_id: uuid.UUID,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    event_id = event_id or uuid.uuid4()
    session.execute(
        sa.insert(EVENTS).values(
            id=event_id, user_id=user_id, calendar_id=calendar_id, **event_columns(event)
        )
    )
    replace_attendees(session, [(event_id, event.attendees)])
    return event_id


def update_event(session: Session, event_id: uuid.UUID, event: Event) -> None:
    session.execute(sa.update(EVENTS).where(EVENTS.c.id == event_id).values(**event_columns(event)))
    replace_attendees(session, [(event_id, event.attendees)])


Clock = Callable[[], datetime]


@pytest.fixture(params=["embedded", "production"])
def app(request: pytest.FixtureRequest) -> Iterator[App]:
    """The API in each mode: SQLite + in-process broker, PostgreSQL + Redis."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running_app(settings)
