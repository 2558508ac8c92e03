"""Domain values to JSON, in the shapes the API documents. No secrets ever pass here."""

from __future__ import annotations

from typing import Any

from calsync.domain.accounts import UserAccount


def account_json(account: UserAccount) -> dict[str, Any]:
    """A user as ``GET /me`` and the sign-in answer show it."""
    return {
        "id": str(account.id),
        "email": account.email,
        "display_name": account.display_name,
        "role": account.role.value,
        "status": account.status.value,
        "timezone": account.timezone,
    }
