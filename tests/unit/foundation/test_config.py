"""Settings: read once from the environment, every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from calsync.config import ConfigError, ConflictPolicy, Mode, Settings

KEY = Fernet.generate_key().decode()


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "CALSYNC_DATABASE_URL": "postgresql://calsync@db/calsync",
        "CALSYNC_REDIS_URL": "redis://redis:6379/0",
        "CALSYNC_PUBLIC_URL": "https://calsync.example.com",
        "CALSYNC_JWT_SECRET": "x" * 40,
        "CALSYNC_ENCRYPTION_KEYS": KEY,
        "CALSYNC_GOOGLE_CLIENT_ID": "client",
        "CALSYNC_GOOGLE_CLIENT_SECRET": "secret",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def test_nothing_configured_means_embedded_mode_in_the_state_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"CALSYNC_STATE_DIR": str(tmp_path)})

    assert settings.mode is Mode.EMBEDDED
    assert settings.database_url == f"sqlite:///{(tmp_path / 'calsync.db').resolve()}"
    assert settings.redis_url is None
    assert settings.run_emulator
    assert settings.google_api_base == "http://127.0.0.1:8765"


def test_embedded_secrets_are_created_once_and_reused(tmp_path: Path) -> None:
    first = Settings.from_env({"CALSYNC_STATE_DIR": str(tmp_path)})
    second = Settings.from_env({"CALSYNC_STATE_DIR": str(tmp_path)})

    assert first.jwt_secret == second.jwt_secret
    assert first.encryption_keys == second.encryption_keys
    assert (tmp_path / "calsync-dev-secrets.json").stat().st_mode & 0o077 == 0


def test_complete_production_settings_are_accepted() -> None:
    settings = Settings.from_env(production_env(CALSYNC_CONFLICT_POLICY="manual"))

    assert settings.mode is Mode.PRODUCTION
    assert settings.conflict_policy is ConflictPolicy.MANUAL
    assert settings.encryption_keys == (KEY,)
    assert not settings.uses_emulator


def test_every_missing_required_setting_is_named_at_once() -> None:
    env = production_env(
        CALSYNC_PUBLIC_URL="", CALSYNC_JWT_SECRET="", CALSYNC_GOOGLE_CLIENT_SECRET=""
    )

    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)

    message = str(caught.value)
    for name in ("CALSYNC_PUBLIC_URL", "CALSYNC_JWT_SECRET", "CALSYNC_GOOGLE_CLIENT_SECRET"):
        assert name in message
    assert "CALSYNC_ENCRYPTION_KEYS" not in message


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"CALSYNC_ENCRYPTION_KEYS": "not-a-key"}, "CALSYNC_ENCRYPTION_KEYS"),
        ({"CALSYNC_CONFLICT_POLICY": "coin_flip"}, "CALSYNC_CONFLICT_POLICY"),
        ({"CALSYNC_WORKER_THREADS": "many"}, "CALSYNC_WORKER_THREADS"),
        ({"CALSYNC_PUBLIC_URL": "http://calsync.example.com"}, "CALSYNC_PUBLIC_URL"),
        ({"CALSYNC_JWT_SECRET": "short"}, "CALSYNC_JWT_SECRET"),
        ({"CALSYNC_REDIS_URL": ""}, "CALSYNC_REDIS_URL"),
        ({"CALSYNC_DATABASE_URL": "mysql://db/x"}, "CALSYNC_DATABASE_URL"),
        ({"CALSYNC_JWT_ALGORITHM": "RS256"}, "CALSYNC_JWT_PUBLIC_KEY_FILE"),
        ({"CALSYNC_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, "CALSYNC_TRUSTED_PROXIES"),
        ({"CALSYNC_METRICS_TOKEN": "short"}, "CALSYNC_METRICS_TOKEN"),
        ({"CALSYNC_METRICS_PORT": "-1"}, "CALSYNC_METRICS_PORT"),
        ({"CALSYNC_ADDRESS_RATE_LIMIT_PER_MINUTE": "0"}, "CALSYNC_ADDRESS_RATE_LIMIT_PER_MINUTE"),
        ({"CALSYNC_GOOGLE_DAILY_BUDGET": "10"}, "CALSYNC_GOOGLE_DAILY_BUDGET"),
        ({"CALSYNC_POLL_WITH_CHANNEL_SECONDS": "often"}, "CALSYNC_POLL_WITH_CHANNEL_SECONDS"),
    ],
)
def test_malformed_settings_are_refused_by_name(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(production_env(**overrides))

    assert named in str(caught.value)


def test_the_daily_budget_and_the_adaptive_poll_interval() -> None:
    defaults = Settings.from_env(production_env())
    assert defaults.google_daily_budget == 1_000_000
    assert defaults.poll_with_channel_seconds == 14_400
    chosen = Settings.from_env(
        production_env(
            CALSYNC_GOOGLE_DAILY_BUDGET="5000000", CALSYNC_POLL_WITH_CHANNEL_SECONDS="28800"
        )
    )
    assert chosen.google_daily_budget == 5_000_000
    assert chosen.poll_with_channel_seconds == 28_800


def test_secret_values_are_never_echoed_in_errors_or_reprs() -> None:
    bad_key = "secret-looking-but-invalid-key-material"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(production_env(CALSYNC_ENCRYPTION_KEYS=bad_key))
    assert bad_key not in str(caught.value)

    settings = Settings.from_env(production_env())
    assert KEY not in repr(settings)
    assert "x" * 40 not in repr(settings)


def test_plain_http_public_url_is_allowed_only_against_the_emulator() -> None:
    settings = Settings.from_env(
        production_env(
            CALSYNC_PUBLIC_URL="http://127.0.0.1:8000",
            CALSYNC_GOOGLE_API_BASE="http://127.0.0.1:8765",
        )
    )
    assert settings.uses_emulator
    assert settings.public_url == "http://127.0.0.1:8000"


def test_the_address_limit_proxies_and_metrics_settings() -> None:
    defaults = Settings.from_env(production_env())
    token = "m" * 40
    chosen = Settings.from_env(
        production_env(
            CALSYNC_ADDRESS_RATE_LIMIT_PER_MINUTE="3000",
            CALSYNC_TRUSTED_PROXIES="10.0.0.0/8, 2001:db8::1",
            CALSYNC_METRICS_TOKEN=token,
            CALSYNC_METRICS_PORT="9100",
            CALSYNC_STATE_METRICS_CACHE_SECONDS="0",
        )
    )

    # By default: no proxy is trusted, /metrics is on the API port without a token
    assert defaults.address_rate_limit_per_minute == 1200
    assert defaults.trusted_proxies == ()
    assert (defaults.metrics_token, defaults.metrics_port) == (None, None)
    assert defaults.state_metrics_cache_seconds == 5
    assert chosen.address_rate_limit_per_minute == 3000
    assert chosen.trusted_proxies == ("10.0.0.0/8", "2001:db8::1")
    assert (chosen.metrics_token, chosen.metrics_port) == (token, 9100)
    assert chosen.state_metrics_cache_seconds == 0
    assert token not in repr(chosen)


def test_an_api_process_has_few_threads_unless_told(tmp_path: Path) -> None:
    # Four by default in both modes (decision HB4: the threads share the interpreter lock
    # with the event loop; 16 cost more CPU a request and delayed /healthz)
    assert Settings.from_env(production_env()).api_threads == 4
    assert Settings.from_env({"CALSYNC_STATE_DIR": str(tmp_path)}).api_threads == 4
    told = production_env(CALSYNC_API_THREADS="12")
    assert Settings.from_env(told).api_threads == 12
    assert Settings.embedded(tmp_path).api_threads == 4
