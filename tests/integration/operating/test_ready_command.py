"""``calsync ready``: the checks of ``/readyz`` as an exit status (the worker pods' probe)."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from calsync.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch, pg_url: str, redis_url: str) -> None:
    monkeypatch.setenv("CALSYNC_DATABASE_URL", pg_url)
    monkeypatch.setenv("CALSYNC_REDIS_URL", redis_url)
    monkeypatch.setenv("CALSYNC_PUBLIC_URL", "https://calsync.example.com")
    monkeypatch.setenv("CALSYNC_JWT_SECRET", "j" * 48)
    monkeypatch.setenv("CALSYNC_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("CALSYNC_GOOGLE_CLIENT_ID", "client")
    monkeypatch.setenv("CALSYNC_GOOGLE_CLIENT_SECRET", "secret")


@pytest.mark.usefixtures("production_env")
def test_ready_when_migrated_database_and_broker_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ready"]) == 0
    checks = json.loads(capsys.readouterr().out)
    assert checks == {"database": "ok", "migrations": "ok", "broker": "ok"}


@pytest.mark.usefixtures("production_env")
def test_not_ready_when_the_broker_is_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALSYNC_REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["ready"]) == 1
    checks = json.loads(capsys.readouterr().out)
    assert checks["database"] == "ok"
    assert checks["broker"].startswith("unavailable")


@pytest.mark.usefixtures("production_env")
def test_not_ready_before_migrations(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty_pg_url: str
) -> None:
    monkeypatch.setenv("CALSYNC_DATABASE_URL", empty_pg_url)
    assert main(["ready"]) == 1
    assert json.loads(capsys.readouterr().out)["migrations"] == "behind"
