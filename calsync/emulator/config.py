"""Settings of one emulator instance, changed at run time through ``/emulator/config``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_CLIENT_ID = "calsync-dev"
DEFAULT_CLIENT_SECRET = "calsync-dev-secret"  # noqa: S105 - a well-known dev credential


@dataclass
class RateLimits:
    """Requests per rolling 60 s of emulator time; None means unlimited (the default).

    ``status`` picks Google's answer: 403 (``userRateLimitExceeded`` per user,
    ``rateLimitExceeded`` per project) or 429 (``rateLimitExceeded``).
    """

    per_user_per_minute: int | None = None
    per_project_per_minute: int | None = None
    status: int = 403


@dataclass
class EmulatorConfig:
    token_ttl_seconds: int = 3600
    default_channel_ttl_seconds: int = 604800  # Google's documented default: one week
    max_channel_ttl_seconds: int = 2592000  # 30 days
    sync_token_ttl_seconds: int | None = None  # None: sync tokens never expire by age
    consent_denied: bool = False
    push_timeout_seconds: float = 5.0
    request_log_limit: int = 100_000
    #: A conference create request is answered on the first read of its calendar this
    #: long after it (0: the next read), with this outcome (``success`` or ``failure``).
    conference_delay_seconds: float = 0.0
    conference_outcome: str = "success"
    rate_limits: RateLimits = field(default_factory=RateLimits)
    clients: dict[str, str] = field(
        default_factory=lambda: {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
    )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; ValueError names an unknown or mistyped key."""
        known = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown config key: {key}")
            if key == "rate_limits":
                if not isinstance(value, dict):
                    raise ValueError("rate_limits must be an object")
                limits = asdict(self.rate_limits) | value
                if set(limits) - {f.name for f in fields(RateLimits)}:
                    raise ValueError(f"unknown rate_limits key in {sorted(value)}")
                if limits["status"] not in (403, 429):
                    raise ValueError("rate_limits.status must be 403 or 429")
                self.rate_limits = RateLimits(**limits)
            elif key == "clients":
                if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()
                ):
                    raise ValueError("clients must map client_id to client_secret")
                self.clients = dict(value)
            elif key == "conference_outcome":
                if value not in ("success", "failure"):
                    raise ValueError("conference_outcome must be success or failure")
                self.conference_outcome = value
            elif key == "consent_denied":
                self.consent_denied = bool(value)
            elif value is not None and not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number")
            elif key == "request_log_limit" and (not isinstance(value, int) or value < 1):
                raise ValueError("request_log_limit must be a whole number of at least 1")
            else:
                setattr(self, key, value)
