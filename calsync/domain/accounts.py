"""Accounts: who a user is and what they may do. Pure values, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a user may do: an admin may act on anyone's objects, a user on their own."""

    ADMIN = "admin"
    USER = "user"


class AccountStatus(StrEnum):
    """Whether calsync can act for the user at Google."""

    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"
    DISABLED = "disabled"


@dataclass(frozen=True)
class UserAccount:
    """A user of calsync as the rest of the application sees it."""

    id: uuid.UUID
    email: str
    role: Role
    status: AccountStatus
    display_name: str | None = None
    timezone: str = "UTC"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def normalise_email(email: str) -> str:
    """The form in which emails are stored and compared: trimmed and lower-cased."""
    return email.strip().lower()
