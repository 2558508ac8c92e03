"""Injected faults: what ``POST /emulator/faults`` asks the emulator to do wrong.

A fault matches requests by HTTP method, a regular expression searched in the path,
and optionally the acting user, and fires for the next ``count`` matching requests
(``count: null`` = until removed). Kinds:

- ``status``: answer with ``status`` in Google's error shape (``reason`` defaults by
  status) instead of handling the request;
- ``reset``: close the connection without any answer (TCP RST);
- ``latency``: wait ``latency_ms`` before handling (combines with the others); with
  ``after_write: true``, handle the request first and wait before answering (the write
  is in the store while the client still waits: a client killed then never hears of it);
- ``expire_token``: expire the access token the request carries, so it gets 401;
- ``drop_push``: lose the next ``count`` push notifications (optionally of one channel);
- ``drop_items``: handle the request, then leave out of a successful answer's ``items``
  all but the first ``keep`` (default 0): a listing that comes back (nearly) empty while
  the events are still there, with its page and sync tokens. Only 2xx answers consume it.

``after_write: true`` on ``status``/``reset`` lets the request be handled (the write
reaches the store) and then replaces a successful answer with the fault: the client
sees an error for a write that happened.

Not thread-safe by itself: ``EmulatorState.lock`` guards it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

KINDS = frozenset({"status", "reset", "latency", "expire_token", "drop_push", "drop_items"})
_ids = itertools.count(1)


@dataclass
class Fault:
    id: str
    kind: str
    remaining: int | None
    method: str | None = None
    path: re.Pattern[str] | None = None
    user: str | None = None
    after_write: bool = False
    status: int = 503
    reason: str | None = None
    message: str | None = None
    domain: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_ms: int = 0
    channel_id: str | None = None
    keep: int = 0
    hits: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Fault:
        """Build from the control API body; ValueError says what is wrong."""
        kind = spec.get("kind", "status")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}")
        count = spec.get("count", 1)
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null")
        status = spec.get("status", 503)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        latency = spec.get("latency_ms", 0)
        if not isinstance(latency, int | float) or latency < 0:
            raise ValueError("latency_ms must be a non-negative number")
        headers = spec.get("headers") or {}
        if not isinstance(headers, dict):
            raise ValueError("headers must be an object")
        try:
            path = re.compile(spec["path"]) if spec.get("path") else None
        except re.error as err:
            raise ValueError(f"path is not a valid regular expression: {err}") from None
        method = spec.get("method")
        user = spec.get("user")
        keep = spec.get("keep", 0)
        if not isinstance(keep, int) or keep < 0:
            raise ValueError("keep must be a non-negative integer")
        return cls(
            id=f"fault-{next(_ids)}",
            kind=kind,
            remaining=count,
            method=method.upper() if isinstance(method, str) else None,
            path=path,
            user=user.lower() if isinstance(user, str) else None,
            after_write=bool(spec.get("after_write", False)),
            status=status,
            reason=spec.get("reason"),
            message=spec.get("message"),
            domain=spec.get("domain"),
            headers={str(k): str(v) for k, v in headers.items()},
            latency_ms=int(latency),
            channel_id=spec.get("channel_id"),
            keep=keep,
        )

    def matches(self, method: str, path: str, user: str | None) -> bool:
        return (
            self.remaining != 0
            and (self.method is None or self.method == method)
            and (self.path is None or self.path.search(path) is not None)
            and (self.user is None or self.user == user)
        )

    def consume(self) -> None:
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "remaining": self.remaining,
            "method": self.method,
            "path": self.path.pattern if self.path else None,
            "user": self.user,
            "after_write": self.after_write,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "domain": self.domain,
            "headers": self.headers,
            "latency_ms": self.latency_ms,
            "channel_id": self.channel_id,
            "keep": self.keep,
            "hits": self.hits,
        }


@dataclass
class RequestFaults:
    """What fires for one request: computed before handling."""

    latency_ms: int = 0
    latency_after_ms: int = 0
    expire_token: bool = False
    before: Fault | None = None
    after: Fault | None = None
    fired: list[str] = field(default_factory=list)


@dataclass
class FaultSet:
    faults: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def remove(self, fault_id: str) -> bool:
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def clear(self) -> None:
        self.faults.clear()

    def for_request(self, method: str, path: str, user: str | None) -> RequestFaults:
        """Consume the faults that fire before handling; pick (not consume) an after one."""
        found = RequestFaults()
        for fault in self.faults:
            if fault.kind == "drop_push" or not fault.matches(method, path, user):
                continue
            if fault.kind == "latency" and fault.after_write:
                found.latency_after_ms += fault.latency_ms
            elif fault.kind == "latency":
                found.latency_ms += fault.latency_ms
            elif fault.kind == "expire_token":
                found.expire_token = True
            elif fault.after_write or fault.kind == "drop_items":
                if found.after is not None:
                    continue
                found.after = fault
                continue
            elif found.before is None:
                found.before = fault
            else:
                continue
            fault.consume()
            found.fired.append(fault.id)
        if found.before is not None:
            found.after = None
        return found

    def drop_push(self, channel_id: str) -> str | None:
        """Consume a matching ``drop_push`` fault; its id, or None to deliver."""
        for fault in self.faults:
            if (
                fault.kind == "drop_push"
                and fault.remaining != 0
                and fault.channel_id in (None, channel_id)
            ):
                fault.consume()
                return fault.id
        return None

    def to_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.faults]
