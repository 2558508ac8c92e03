"""Reading ``CALSYNC_*`` variables from a mapping, for `calsync.config.Settings.from_env`.

A variable is parsed and checked here (a whole number, a URL with one of some schemes, a
Fernet key, a file that exists, ...); which variables exist, and what they mean, is
`calsync.config`'s. Reads the mapping it is given, never ``os.environ`` itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

PREFIX = "CALSYNC_"

E = TypeVar("E", bound="StrEnum")


class ConfigError(Exception):
    """One or more settings are missing or malformed.

    ``problems`` holds one line per setting, each naming the variable; no value is echoed,
    since some of them are secrets.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class EnvReader:
    """Typed access to ``CALSYNC_*`` variables that collects problems instead of failing early.

    Each reader returns the value, or its default when the variable is unset or
    malformed, and appends one line naming the variable (never echoing its value) to
    `problems` when it is malformed; `raise_problems` raises them all at once."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._environ.get(PREFIX + name, "").strip()
        return value or default

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            self.problems.append(f"{PREFIX}{name} is required but not set")
            return ""
        return value

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{PREFIX}{name} must be a whole number")
            return default
        if value < minimum:
            self.problems.append(f"{PREFIX}{name} must be at least {minimum}")
            return default
        return value

    def choice(self, name: str, enum: type[E], default: E) -> E:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return enum(raw)
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            self.problems.append(f"{PREFIX}{name} must be one of: {allowed}")
            return default

    def url(self, name: str, value: str | None, *, schemes: tuple[str, ...]) -> None:
        if not value:
            return
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            self.problems.append(f"{PREFIX}{name} must be a URL with scheme {' or '.join(schemes)}")

    def path(self, name: str) -> Path | None:
        raw = self.text(name)
        if raw is None:
            return None
        path = Path(raw)
        if not path.is_file():
            self.problems.append(f"{PREFIX}{name} names a file that does not exist")
        return path

    def fernet_keys(self, raw: str) -> tuple[str, ...]:
        keys = tuple(k.strip() for k in raw.split(",") if k.strip())
        for index, key in enumerate(keys):
            try:
                Fernet(key.encode())
            except ValueError:
                self.problems.append(
                    f"{PREFIX}ENCRYPTION_KEYS entry {index + 1} is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                )
        return keys

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{PREFIX}{name} must be true or false")
        return default

    def networks(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                self.problems.append(
                    f"{PREFIX}{name} must list IP addresses or networks, separated by commas"
                )
                return ()
        return entries

    def raise_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)
