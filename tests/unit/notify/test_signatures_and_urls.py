"""Webhook signatures verify, and SMTP URLs parse into the right security mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calsync.notify.outgoing_webhooks import sign, verify_signature
from calsync.notify.smtp import parse_smtp_url

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SECRET = "whsec_test"


def test_a_signature_verifies_over_timestamp_and_body() -> None:
    body = b'{"id":"1"}'
    timestamp = int(NOW.timestamp())
    signature = sign(SECRET, timestamp, body)

    assert signature.startswith("v1=")
    assert verify_signature(
        SECRET, timestamp=str(timestamp), signature=signature, body=body, now=NOW
    )


@pytest.mark.parametrize(
    ("signed_with", "received_body", "received_at"),
    [
        ("another secret", b'{"id":"1"}', NOW),
        (SECRET, b'{"id":"2"}', NOW),
        (SECRET, b'{"id":"1"}', NOW + timedelta(seconds=301)),
        (SECRET, b'{"id":"1"}', NOW - timedelta(seconds=301)),
    ],
)
def test_a_wrong_secret_a_changed_body_or_a_stale_timestamp_fails(
    signed_with: str, received_body: bytes, received_at: datetime
) -> None:
    timestamp = int(NOW.timestamp())
    signature = sign(signed_with, timestamp, b'{"id":"1"}')

    assert not verify_signature(
        SECRET,
        timestamp=str(timestamp),
        signature=signature,
        body=received_body,
        now=received_at,
    )


def test_a_malformed_timestamp_fails() -> None:
    assert not verify_signature(SECRET, timestamp="x", signature="v1=00", body=b"", now=NOW)


@pytest.mark.parametrize(
    ("url", "host", "port", "security", "user", "password"),
    [
        ("smtp://mail.example.com", "mail.example.com", 25, "plain", None, None),
        (
            "smtp://mail.example.com:2525?starttls=true",
            "mail.example.com",
            2525,
            "starttls",
            None,
            None,
        ),
        (
            "smtp+starttls://u%40x:p%3Aw@mail.example.com",
            "mail.example.com",
            587,
            "starttls",
            "u@x",
            "p:w",
        ),
        ("smtps://u:p@mail.example.com", "mail.example.com", 465, "tls", "u", "p"),
    ],
)
def test_smtp_urls(
    url: str, host: str, port: int, security: str, user: str | None, password: str | None
) -> None:
    config = parse_smtp_url(url)
    assert (config.host, config.port, config.security, config.username) == (
        host,
        port,
        security,
        user,
    )
    assert (config.password.reveal() if config.password else None) == password
    assert "p:w" not in repr(config)


@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://", "smtp://h:port"])
def test_bad_smtp_urls(url: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_smtp_url(url)
