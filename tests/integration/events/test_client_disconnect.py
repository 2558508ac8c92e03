"""A client that disconnects before its request body arrived is not an error.

Found by `tests/perf/bench_api_load.py`: when wrk stopped, every ``POST /events`` it left
half-sent was logged twice at error level with a traceback (calsync's "unhandled
error" and uvicorn's "Exception in ASGI application"), burying real errors. Through a
real server on each database, two users: a body cut short by a closed socket logs no
error and stores nothing, and the next requests are answered as usual.
"""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from calsync.threaded_server import ThreadedServer
from calsync.web.app import create_app
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration

WEEK = {"start_date": "2031-03-03", "end_date": "2031-03-09"}


def test_a_body_cut_short_by_the_client_logs_no_error_and_stores_nothing(
    any_app: EventsApp, caplog: pytest.LogCaptureFixture
) -> None:
    users = [any_app.connect("alice@example.com"), any_app.connect("bob@example.com")]
    caplog.set_level(logging.INFO)
    with ThreadedServer(create_app(any_app.services), name="calsync-disconnect") as server:
        address = urlsplit(server.url)
        for user in users:
            # Given a create whose body promises 400 bytes and sends 10 before the client leaves
            head = (
                "POST /events HTTP/1.1\r\n"
                f"Host: {address.hostname}\r\n"
                f"Authorization: {user.headers['Authorization']}\r\n"
                "Content-Type: application/json\r\n"
                "Content-Length: 400\r\n\r\n"
                '{"title": '
            )
            with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
                sock.sendall(head.encode())
                time.sleep(0.3)  # the route waits for the rest of the body
            time.sleep(0.3)  # the server notices the closed socket
        # Then nothing was logged as an error, and the server answers everyone as before
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for user in users:
                listed = client.get("/events", params=WEEK, headers=user.headers)
                assert listed.status_code == 200, listed.text
                assert listed.json()["events"] == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert any("client disconnected" in r.getMessage() for r in caplog.records)
