"""The migration that binds users to Google subjects fills them from the stored tokens, on
both databases: the older of two users with one subject keeps it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from calsync.store.db import make_engine
from calsync.store.migrate import upgrade

pytestmark = pytest.mark.integration

BEFORE = "0009"

_users = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("email", sa.String()),
    sa.column("role", sa.String()),
    sa.column("status", sa.String()),
    sa.column("timezone", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_tokens = sa.table(
    "oauth_tokens",
    sa.column("id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    sa.column("provider", sa.String()),
    sa.column("provider_subject", sa.String()),
    sa.column("access_token_encrypted", sa.LargeBinary()),
    sa.column("scopes", sa.String()),
    sa.column("status", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_subjects_are_filled_from_tokens_oldest_user_first(
    backend: str, empty_pg_url: str, tmp_path: Path
) -> None:
    engine = make_engine(
        empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'm.db'}"
    )
    upgrade(engine, BEFORE)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    # Given users stored under the old matching by email: two share a subject (the account
    # changed its email), one has tokens without a subject, one has no tokens
    people = {name: uuid.uuid4() for name in ("old", "renamed", "nosub", "notokens")}
    subjects = {"old": "111", "renamed": "111", "nosub": None}
    with engine.begin() as connection:
        for offset, (name, user_id) in enumerate(people.items()):
            moment = start + timedelta(days=offset)
            connection.execute(
                sa.insert(_users).values(
                    id=user_id,
                    email=f"{name}@example.com",
                    role="user",
                    status="active",
                    timezone="UTC",
                    created_at=moment,
                    updated_at=moment,
                )
            )
            if name in subjects:
                connection.execute(
                    sa.insert(_tokens).values(
                        id=uuid.uuid4(),
                        user_id=user_id,
                        provider="google",
                        provider_subject=subjects[name],
                        access_token_encrypted=b"x",
                        scopes="",
                        status="valid",
                        created_at=moment,
                        updated_at=moment,
                    )
                )

    upgrade(engine)

    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT email, google_subject FROM users"))
        bound = {email: subject for email, subject in rows}
        counts = connection.execute(sa.text("SELECT count FROM audit_events")).all()
    assert bound == {
        "old@example.com": "111",
        "renamed@example.com": None,
        "nosub@example.com": None,
        "notokens@example.com": None,
    }
    assert counts == []
    engine.dispose()
