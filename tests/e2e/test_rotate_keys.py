"""``calsync rotate-keys`` re-encrypts stored tokens under the newest key."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.store.credentials import load_credentials, save_tokens
from calsync.store.secrets import Secret
from calsync.store.tables import AuditEvent, OAuthToken, utcnow
from calsync.store.users import ensure_user

pytestmark = pytest.mark.e2e

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def env_for(settings: Settings, keys: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    base.update(
        {
            "CALSYNC_DATABASE_URL": settings.database_url,
            "CALSYNC_REDIS_URL": settings.redis_url or "",
            "CALSYNC_PUBLIC_URL": "http://127.0.0.1:8000",
            "CALSYNC_GOOGLE_API_BASE": "http://127.0.0.1:8765",
            "CALSYNC_JWT_SECRET": "s" * 40,
            "CALSYNC_ENCRYPTION_KEYS": keys,
            "CALSYNC_GOOGLE_CLIENT_ID": "id",
            "CALSYNC_GOOGLE_CLIENT_SECRET": "secret",
        }
    )
    return base


def test_rotation_reencrypts_every_token_under_the_new_key(
    production_settings: Settings, tmp_path: Path
) -> None:
    # Given two users whose tokens were stored under the old key
    old = bootstrap(replace(production_settings, encryption_keys=(OLD_KEY,)))
    with old.sessions.begin() as session:
        for n in range(3):
            user = ensure_user(session, f"user{n}@example.com")
            save_tokens(
                session,
                old.secrets,
                user_id=user.id,
                access_token=Secret(f"access-{n}"),
                refresh_token=Secret(f"refresh-{n}"),
                expires_at=utcnow(),
                scopes="calendar",
            )
    with old.sessions() as session:
        before = {
            row.user_id: row.access_token_encrypted
            for row in session.scalars(sa.select(OAuthToken))
        }
    assert all(b"access-" not in value for value in before.values())  # ciphertext at rest
    old.close()

    # When the new key is put first and rotate-keys runs
    result = subprocess.run(
        [sys.executable, "-m", "calsync.cli", "rotate-keys"],
        env=env_for(production_settings, f"{NEW_KEY},{OLD_KEY}"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then every token decrypts with the new key alone, to the same value
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 6 stored secret(s)" in result.stdout
    new_only = bootstrap(replace(production_settings, encryption_keys=(NEW_KEY,)))
    with new_only.sessions() as session:
        rows = list(session.scalars(sa.select(OAuthToken)))
        values = {
            load_credentials(session, new_only.secrets, row.user_id).access_token.reveal()  # type: ignore[union-attr]
            for row in rows
        }
        rotated_audit = session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "keys_rotated")
        )
    assert values == {"access-0", "access-1", "access-2"}
    assert all(row.access_token_encrypted != before[row.user_id] for row in rows)
    with pytest.raises(InvalidToken):
        Fernet(OLD_KEY.encode()).decrypt(rows[0].access_token_encrypted)
    assert rotated_audit is not None
    assert rotated_audit.details == {"rotated": 6, "keys": 2}
    new_only.close()
