"""The simulation's clients: calsync's HTTP API as a user, and Google as other clients.

- `sign_in`: the browser's part of ``/auth/google`` against the emulator (consent is
  immediate there), returning calsync's answer (the JWT and the account).
- `ApiClient`: one user's calsync client. Every answer goes to the `Observer`, which
  keeps what the leak check needs; connection errors (a process being killed) are
  retried, a create with the same ``Idempotency-Key``, as a careful client does.
- `GoogleClients`: googleapiclient services per thread (httplib2 is not thread-safe):
  the *editor* - one Google account with writer access to every simulated calendar,
  whose event writes are told apart from calsync's in the emulator's request log - and
  each user as themselves (calendar-list changes, and reading what Google holds).
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx

from calsync.emulator.testing import EmulatorControl, build_calendar_service

#: The other Google client that writes events in every simulated calendar.
EDITOR = "sim-editor@example.com"
RETRY_FOR = 90.0  # seconds a request is retried while the service is down (a restart)


#: Receives every calsync answer a client sees: ``(user, method, path, status, body)``.
Observer = Callable[[str, str, str, int, Any], None]


def address_of(email: str) -> str:
    """The address `email`'s browser and client come from (one of 10.0.0.0/8), named to
    calsync in ``X-Forwarded-For`` by the local proxy it trusts (tests/sim/dev_process):
    people sign in from addresses of their own, and calsync limits each address."""
    offset = int.from_bytes(hashlib.sha256(email.encode()).digest()[:3], "big")
    return str(ipaddress.IPv4Address("10.0.0.0") + offset)


def sign_in(base_url: str, email: str) -> dict[str, Any]:
    """Sign `email` in through ``/auth/google``; calsync's answer ``{"token", "user"}``."""
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            forwarded = {"X-Forwarded-For": address_of(email)}
            with httpx.Client(base_url=base_url, timeout=30.0, headers=forwarded) as browser:
                start = browser.get(
                    "/auth/google", params={"login_hint": email}, follow_redirects=False
                )
                if start.status_code != 302:
                    raise RuntimeError(f"sign-in of {email} did not start: {start.status_code}")
                at_google = httpx.get(start.headers["location"], follow_redirects=False)
                back = urlsplit(at_google.headers["location"])
                answer = browser.get(f"{back.path}?{back.query}")
            if answer.status_code == 200:
                result: dict[str, Any] = answer.json()
                return result
            if answer.status_code < 500 or time.monotonic() > deadline:
                raise RuntimeError(f"sign-in of {email}: {answer.status_code} {answer.text}")
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


class ApiClient:
    """calsync's API as one user (see the module docstring)."""

    def __init__(self, base_url: str, email: str, token: str, observe: Observer) -> None:
        self.email = email
        self.base_url = base_url
        self.observe = observe
        self._local = threading.local()
        self.token = token
        self._opened: list[httpx.Client] = []
        self._lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        """This thread's connection (httpx clients are not shared across threads here)."""
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None or client.headers["Authorization"] != f"Bearer {self.token}":
            client = httpx.Client(
                base_url=self.base_url,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "X-Forwarded-For": address_of(self.email),
                },
                timeout=60.0,
            )
            self._local.client = client
            with self._lock:
                self._opened.append(client)
        return client

    def sign_in_again(self, token: str) -> None:
        """Use `token` from now on (connections made with the old one close at the end)."""
        self.token = token

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for client in self._opened:
                client.close()
            self._opened.clear()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; retried on connection errors and 503 while the service restarts."""
        deadline = time.monotonic() + RETRY_FOR
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
                continue
            if response.status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.3)
                continue
            body = response.json() if response.content else None
            self.observe(self.email, method, path, response.status_code, body)
            return response

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.call("GET", path, params=params or None)

    def all_events(self, **params: Any) -> list[dict[str, Any]]:
        """Every page of ``GET /events`` with `params`."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = params | {"limit": 200} | ({"cursor": cursor} if cursor else {})
            answer = self.get("/events", **query)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            found += body["events"]
            cursor = body.get("next_cursor")
            if not cursor:
                return found


class GoogleClients:
    """googleapiclient services for this thread: the editor's and each user's own."""

    def __init__(self, emulator: str) -> None:
        self.emulator = emulator
        self._local = threading.local()
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._opened: list[Any] = []

    def _token(self, email: str, fresh: bool = False) -> str:
        with self._lock:
            if fresh or email not in self._tokens:
                with EmulatorControl(self.emulator) as control:
                    self._tokens[email] = control.issue_tokens(email)["access_token"]
            return self._tokens[email]

    def service(self, email: str) -> Any:
        """The Calendar API acting as `email` for this thread."""
        services: dict[str, Any] = self._local.__dict__.setdefault("services", {})
        token = self._token(email)
        held = services.get(email)
        if held is None or held[0] != token:
            service = build_calendar_service(self.emulator, token)
            with self._lock:
                self._opened.append(service)
            services[email] = (token, service)
        return services[email][1]

    def close(self) -> None:
        """Close every service any thread opened."""
        with self._lock:
            for service in self._opened:
                service.close()
            self._opened.clear()

    def renew(self, email: str) -> None:
        """New tokens for `email` (after their grants were revoked)."""
        self._token(email, fresh=True)

    @property
    def editor(self) -> Any:
        return self.service(EDITOR)
