"""SMTP with STARTTLS and authentication, against a real aiosmtpd server with a test CA."""

from __future__ import annotations

import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from calsync.notify.senders import Notice, Recipient
from calsync.notify.smtp import SmtpSender, parse_smtp_url
from tests.integration.notify.conftest import Mailbox, free_port

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
NOTICE = Notice(
    id=uuid.uuid4(),
    kind="reminder",
    channel="email",
    recipient=Recipient(uuid.uuid4(), "erin@example.com", "UTC"),
    payload={
        "event": {
            "uid": "x1",
            "title": "Budget",
            "location": "",
            "description": "",
            "start": {"dateTime": "2026-06-01T09:00:00+00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-06-01T10:00:00+00:00", "timeZone": "UTC"},
            "all_day": False,
            "timezone": "UTC",
            "status": "confirmed",
            "organizer_email": None,
            "attendees": [],
            "recurrence": [],
            "sequence": 0,
        },
        "occurrence_start": "2026-06-01T09:00:00+00:00",
        "occurrence_end": "2026-06-01T10:00:00+00:00",
        "lead_minutes": 60,
        "recurrence_id": None,
    },
    due_at=NOW,
)


@dataclass
class TlsServer:
    port: int
    mailbox: Mailbox
    client_context: ssl.SSLContext


def certificate(tmp_path: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, pem


def authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"calsync", b"s3cret:pw")
    return AuthResult(success=ok)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    cert_file, key_file, pem = certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield TlsServer(port, mailbox, ssl.create_default_context(cadata=pem.decode()))
    finally:
        controller.stop()


def test_starttls_and_login_then_the_message_goes_through(tls_server: TlsServer) -> None:
    config = parse_smtp_url(f"smtp+starttls://calsync:s3cret%3Apw@127.0.0.1:{tls_server.port}")
    sender = SmtpSender(config, "calsync@example.com", ssl_context=tls_server.client_context)

    sender.send(None, NOTICE, now=NOW)  # type: ignore[arg-type]

    [message] = tls_server.mailbox.messages
    assert message["Subject"] == "Reminder: Budget, Mon 01 Jun 2026, 09:00 UTC"
