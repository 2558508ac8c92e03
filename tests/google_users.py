"""A user that exists both in the emulator and in calsync, with the emulator's tokens stored."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from calsync.bootstrap import Services
from calsync.domain.accounts import Role, UserAccount
from calsync.emulator.testing import EmulatorControl
from calsync.store.credentials import save_tokens
from calsync.store.secrets import Secret
from calsync.store.users import ensure_user


def connect_google_user(
    services: Services,
    control: EmulatorControl,
    email: str,
    *,
    role: Role = Role.USER,
    expires_at: datetime | None = None,
    **emulator_user: Any,
) -> tuple[UserAccount, dict[str, Any]]:
    """Create `email` in the emulator (with `emulator_user` options such as ``calendars``)
    and in calsync, storing the granted tokens encrypted as the OAuth callback does.

    Returns the calsync account and the emulator's answer (tokens, calendars). The access
    token expires at `expires_at` (default: an hour from the services' clock).
    """
    granted: dict[str, Any] = control.create_user(email, **emulator_user)
    with services.sessions.begin() as session:
        account = ensure_user(session, email, role=role)
        save_tokens(
            session,
            services.secrets,
            user_id=account.id,
            access_token=Secret(granted["access_token"]),
            refresh_token=Secret(granted["refresh_token"]),
            expires_at=expires_at or services.clock() + timedelta(hours=1),
            scopes=granted["scope"],
        )
    return account, granted
