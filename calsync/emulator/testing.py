"""Helpers for tests that talk to the emulator (or, where marked, to the real Google).

- :func:`build_calendar_service`: the real ``googleapiclient`` Calendar v3 client from
  its bundled discovery document, pointed at ``<base_url>/calendar/v3/``. The discovery
  document's ``rootUrl`` (``https://www.googleapis.com/``) plus ``servicePath``
  (``calendar/v3/``) is replaced wholesale by ``api_endpoint``, so every method URL is
  ``<base_url>/calendar/v3/<method path>``.
- :func:`new_batch`: a ``BatchHttpRequest`` for ``<base_url>/batch/calendar/v3``; the
  client's own ``service.new_batch_http_request()`` ignores ``api_endpoint`` and always
  targets ``https://www.googleapis.com/batch/calendar/v3``.
- :class:`EmulatorControl`: a small httpx client for the ``/emulator/`` control API.
- :class:`PushReceiver`: a local HTTP server that records push notification POSTs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.http import BatchHttpRequest

from calsync.emulator.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET


def build_calendar_service(
    base_url: str,
    access_token: str,
    *,
    refresh_token: str | None = None,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
) -> Any:
    """A googleapiclient Calendar v3 ``Resource`` acting with ``access_token``.

    With ``refresh_token`` the credentials refresh themselves at ``<base_url>/token``
    on a 401, as a production client would.
    """
    base = base_url.rstrip("/")
    credentials = Credentials(  # type: ignore[no-untyped-call]
        token=access_token,
        refresh_token=refresh_token,
        token_uri=f"{base}/token",
        client_id=client_id,
        client_secret=client_secret,
    )
    return build(
        "calendar",
        "v3",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": f"{base}/calendar/v3/"},
    )


def new_batch(
    base_url: str, callback: Callable[[str, Any, Exception | None], None] | None = None
) -> BatchHttpRequest:
    """A batch request aimed at ``<base_url>/batch/calendar/v3``."""
    return BatchHttpRequest(
        callback=callback, batch_uri=f"{base_url.rstrip('/')}/batch/calendar/v3"
    )


class EmulatorControl:
    """Client of the control API; every method raises ``httpx.HTTPStatusError`` on 4xx/5xx."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/emulator", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EmulatorControl:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._call("POST", "/reset")

    def configure(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/config", json=changes)
        return result

    def create_user(
        self, email: str, *, calendars: list[dict[str, Any]] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """``{"email", "access_token", "refresh_token", "calendars": [...]}``."""
        body = {"email": email, "calendars": calendars or []} | extra
        result: dict[str, Any] = self._call("POST", "/users", json=body)
        return result

    def issue_tokens(self, email: str, *, scopes: list[str] | None = None) -> dict[str, Any]:
        body = {"scopes": scopes} if scopes is not None else {}
        result: dict[str, Any] = self._call("POST", f"/users/{email}/tokens", json=body)
        return result

    def set_consent(self, email: str, grant: list[str] | None) -> dict[str, Any]:
        """What ``email`` ticks on the granular consent screen from now on (None: every
        box); the user must exist (``create_user``)."""
        if grant is None:
            result: dict[str, Any] = self._call("DELETE", f"/users/{email}/consent")
        else:
            result = self._call("POST", f"/users/{email}/consent", json={"grant": grant})
        return result

    def revoke_user(self, email: str) -> int:
        return int(self._call("POST", f"/users/{email}/revoke")["revoked"])

    def recreate_user(self, email: str) -> dict[str, Any]:
        """Delete the account and create another with the same email: ``{"email", "name",
        "sub"}`` of the new one (a new ``sub``)."""
        result: dict[str, Any] = self._call("POST", f"/users/{email}/recreate")
        return result

    def users(self) -> list[dict[str, Any]]:
        """Every account: ``{"email", "name", "sub", "calendars"}``."""
        result: list[dict[str, Any]] = self._call("GET", "/users")["users"]
        return result

    def add_calendar(
        self,
        email: str,
        summary: str,
        *,
        access_role: str = "owner",
        owner: str | None = None,
        time_zone: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"summary": summary, "access_role": access_role}
        if owner is not None:
            body["owner"] = owner
        if time_zone is not None:
            body["time_zone"] = time_zone
        result: dict[str, Any] = self._call("POST", f"/users/{email}/calendars", json=body)
        return result

    def share(self, calendar_id: str, email: str, role: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/calendars/{calendar_id}/acl", json={"email": email, "role": role}
        )
        return result

    def seed_event(self, calendar_id: str, resource: dict[str, Any]) -> dict[str, Any]:
        """Put an event in a calendar as Google itself would (a ``fromGmail`` event, a
        contact's ``birthday``): no client can create those."""
        result: dict[str, Any] = self._call(
            "POST", f"/calendars/{quote(calendar_id, safe='@')}/events", json=resource
        )
        return result

    def invalidate_sync_tokens(self, calendar_id: str) -> None:
        self._call("POST", f"/calendars/{calendar_id}/invalidate-sync-tokens")

    def add_fault(self, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/faults", json=spec)
        return result

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/faults")["faults"])

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def requests(self, **filters: str) -> list[dict[str, Any]]:
        return list(self._call("GET", "/requests", params=filters)["requests"])

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/clock", json={"advance_seconds": seconds})
        return result

    def channels(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/channels")["channels"])

    def deliveries(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/deliveries")["deliveries"])


@dataclass(frozen=True)
class RecordedPush:
    path: str
    headers: dict[str, str]
    body: bytes


class PushReceiver:
    """Records POSTs on ``127.0.0.1:<free port>``; answers ``status`` (default 200)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self._received: list[RecordedPush] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                # Recorded before answering: the emulator sends its next message as soon
                # as this one is answered, and that one's handler thread must not be able
                # to record first (CI saw ['exists', 'sync'] for ['sync', 'exists']).
                with receiver._changed:
                    receiver._received.append(RecordedPush(self.path, dict(self.headers), body))
                    receiver._changed.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/notify"

    @property
    def received(self) -> list[RecordedPush]:
        with self._changed:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedPush]:
        """Block until at least ``count`` POSTs arrived (or ``timeout``); returns them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._received) >= count, timeout)
            return list(self._received)

    def start(self) -> PushReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PushReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
