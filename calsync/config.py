"""Settings: the one place that reads the environment.

Every setting is named ``CALSYNC_<NAME>``. :meth:`Settings.from_env` is the only reader of
``os.environ`` in the package; everything else receives a :class:`Settings` value.

Two modes (design.md section 3):

* **embedded** (neither ``CALSYNC_DATABASE_URL`` nor ``CALSYNC_REDIS_URL`` set): a SQLite file
  in the state folder, an in-process broker, the in-process emulator, and development secrets
  generated once and kept in ``<state dir>/calsync-dev-secrets.json``.
* **production** (both set): PostgreSQL and Redis; every required setting must be present and
  well formed, and start-up fails with a :class:`ConfigError` that names each one that is not.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from cryptography.fernet import Fernet

from calsync.domain.conflicts import ConflictPolicy

# ConfigError is raised by Settings.from_env, and imported from here by its callers.
from calsync.env_reader import PREFIX, EnvReader
from calsync.env_reader import ConfigError as ConfigError

GOOGLE_API_BASE = "https://www.googleapis.com"
DEV_SECRETS_FILE = "calsync-dev-secrets.json"


class Mode(StrEnum):
    """How the process is wired: see the module docstring."""

    EMBEDDED = "embedded"
    PRODUCTION = "production"


class SendUpdates(StrEnum):
    """Whom Google emails about calsync's writes to events with attendees (``sendUpdates``)."""

    ALL = "all"
    EXTERNAL_ONLY = "externalOnly"
    NONE = "none"


class JWTAlgorithm(StrEnum):
    """Signing algorithms the server may be pinned to."""

    HS256 = "HS256"
    RS256 = "RS256"
    EDDSA = "EdDSA"


@dataclass(frozen=True)
class Settings:
    """Everything calsync needs to know about its environment.

    Build it with :meth:`from_env` in processes, or directly (with :meth:`embedded` as a base
    and :func:`dataclasses.replace`) in tests.
    """

    mode: Mode
    database_url: str
    redis_url: str | None
    public_url: str
    jwt_algorithm: JWTAlgorithm
    jwt_secret: str | None = field(repr=False)
    jwt_private_key_file: Path | None
    jwt_public_key_file: Path | None
    jwt_issuer: str
    jwt_audience: str
    jwt_lifetime_seconds: int
    encryption_keys: tuple[str, ...] = field(repr=False)
    google_client_id: str
    google_client_secret: str = field(repr=False)
    google_api_base: str
    google_oauth_base: str | None
    smtp_url: str | None = field(repr=False)
    smtp_sender: str
    vapid_private_key: str | None = field(repr=False)
    vapid_subject: str
    conflict_policy: ConflictPolicy
    state_dir: Path
    worker_threads: int = 4
    #: Threads of an API process's thread pool (the blocking work of requests: database,
    #: crypto, queue); its database pool is sized from it (`calsync.store.db.api_pool`).
    #: Few: they share the interpreter lock with the event loop (decision HB4).
    api_threads: int = 4
    safety_net_interval_seconds: int = 900
    channel_renew_before_seconds: int = 86_400
    heartbeat_interval_seconds: int = 30
    max_request_body_bytes: int = 1_048_576
    api_rate_limit_per_minute: int = 600
    google_user_requests_per_minute: int = 600
    google_project_requests_per_minute: int = 10_000
    #: The project's Google requests per quota day (midnight to midnight Pacific time),
    #: spent by priority (`calsync.providers.budget`): never more than this in a day.
    google_daily_budget: int = 1_000_000
    #: The safety-net poll interval of a calendar whose push channel is live and whose
    #: last poll found nothing a notification had not brought (`calsync.sync.polling`);
    #: calendars without one are polled every ``safety_net_interval_seconds``.
    poll_with_channel_seconds: int = 14_400
    log_level: str = "INFO"
    run_emulator: bool = False
    emulator_port: int = 8765
    sync_min_interval_seconds: float = 5.0
    sync_lease_seconds: int = 300
    channel_ttl_seconds: int = 604_800
    outbox_max_attempts: int = 12
    send_updates: SendUpdates = SendUpdates.ALL
    #: The convergence audit (`calsync.sync.audit`): each calendar is listed in full and
    #: compared with its local copy once per period, at a time of the period given by its
    #: id; at most `audits_per_minute` audits are enqueued per minute.
    audit_interval_seconds: int = 86_400
    audits_per_minute: int = 100
    #: How long a mass deletion is held before Google is listed again to confirm it.
    deletion_recheck_seconds: int = 900
    #: Requests per minute from one client address (an IPv6 /64), counted before
    #: authentication; ``api_rate_limit_per_minute`` then limits each signed-in user.
    address_rate_limit_per_minute: int = 1200
    #: Proxies (IP addresses or networks) whose ``X-Forwarded-For`` names the client; none
    #: by default, so the header is ignored and the peer's address is the client's.
    trusted_proxies: tuple[str, ...] = ()
    #: Whether the scheduler keeps the read model of expanded lists filled
    #: (`calsync.events.read_model.fill`, decisions V3, X4, Z6): on by default; until
    #: the upkeep has re-expanded a user's events after the first fill, that user's
    #: expanded lists are expanded per request. Off, the scheduler forgets the model
    #: (`read_model.clear`, X5) and writes pay no upkeep.
    read_model: bool = True
    #: When set, ``/metrics`` answers only ``Authorization: Bearer <this>``.
    metrics_token: str | None = field(default=None, repr=False)
    #: When set, ``calsync serve`` serves ``/metrics`` on this port and the API has none.
    metrics_port: int | None = None
    #: How long one computation of the state metrics serves scrapes (0: every scrape).
    state_metrics_cache_seconds: int = 5
    #: Dev mode only (``calsync dev`` sets it): keep outgoing webhooks, and email when no
    #: ``SMTP_URL`` is set, in this folder instead of sending them (``calsync.notify.sink``).
    notice_sink_dir: Path | None = None
    #: The scheduler sets this file's modification time after every tick, for a cheap
    #: liveness probe (`calsync.scheduler.mark_alive`); None: no file.
    scheduler_alive_file: Path | None = None

    @property
    def is_embedded(self) -> bool:
        """True when running on SQLite with the in-process broker."""
        return self.mode is Mode.EMBEDDED

    @property
    def uses_emulator(self) -> bool:
        """True when Google calls go to something other than Google's own API host."""
        return self.google_api_base.rstrip("/") != GOOGLE_API_BASE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every ``CALSYNC_*`` setting.

        Raises:
            ConfigError: naming every missing or malformed setting at once.
        """
        env = EnvReader(os.environ if environ is None else environ)
        database_url = env.text("DATABASE_URL")
        redis_url = env.text("REDIS_URL")
        if database_url is None and redis_url is None:
            settings = _embedded_from_env(env)
        else:
            settings = _production_from_env(env, database_url, redis_url)
        env.raise_problems()
        return settings

    @classmethod
    def production_from_env(
        cls, command: str, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """`from_env` for ``calsync <command>``, a process that runs only beside a
        production deployment (the worker, the scheduler). With neither
        ``CALSYNC_DATABASE_URL`` nor ``CALSYNC_REDIS_URL`` it raises `ConfigError` before
        anything is made: in embedded mode such a process would serve an in-process queue
        nobody sends to, or sweep a SQLite file of its own, for ever (decision JD4)."""
        env = EnvReader(os.environ if environ is None else environ)
        if env.text("DATABASE_URL") is None and env.text("REDIS_URL") is None:
            raise ConfigError(
                [
                    f"calsync {command} runs in production mode only: set CALSYNC_DATABASE_URL,"
                    " CALSYNC_REDIS_URL and the other settings docs/operations.md requires"
                    " (in embedded mode `calsync dev` runs the worker threads and the"
                    " scheduler itself)"
                ]
            )
        return cls.from_env(environ)

    @classmethod
    def embedded(cls, state_dir: Path, *, emulator_port: int = 8765) -> Settings:
        """Embedded-mode settings for ``state_dir`` with development secrets kept there."""
        dev = _dev_secrets(state_dir)
        emulator = f"http://127.0.0.1:{emulator_port}"
        return cls(
            mode=Mode.EMBEDDED,
            database_url=f"sqlite:///{(state_dir / 'calsync.db').resolve()}",
            redis_url=None,
            public_url="http://127.0.0.1:8000",
            jwt_algorithm=JWTAlgorithm.HS256,
            jwt_secret=dev["jwt_secret"],
            jwt_private_key_file=None,
            jwt_public_key_file=None,
            jwt_issuer="calsync",
            jwt_audience="calsync-api",
            jwt_lifetime_seconds=3600,
            encryption_keys=(dev["encryption_key"],),
            google_client_id="calsync-dev",
            google_client_secret="calsync-dev-secret",  # noqa: S106 - the emulator's default client
            google_api_base=emulator,
            google_oauth_base=emulator,
            smtp_url=None,
            smtp_sender="calsync@localhost",
            vapid_private_key=None,
            vapid_subject="mailto:calsync@localhost",
            conflict_policy=ConflictPolicy.LAST_UPDATED_WINS,
            state_dir=state_dir,
            run_emulator=True,
            emulator_port=emulator_port,
        )


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The database URL alone, for migrations: ``CALSYNC_DATABASE_URL``, else the embedded
    SQLite file in ``CALSYNC_STATE_DIR`` (default: the current folder).

    Unlike `Settings.from_env` it needs no other setting (a migration job must not need
    the Google secret or Redis) and writes nothing (no development secrets).
    """
    env = EnvReader(os.environ if environ is None else environ)
    url = env.text("DATABASE_URL")
    if url is not None:
        return url
    state_dir = Path(env.text("STATE_DIR", ".") or ".")
    return f"sqlite:///{(state_dir / 'calsync.db').resolve()}"


def _embedded_from_env(env: EnvReader) -> Settings:
    state_dir = Path(env.text("STATE_DIR", ".") or ".")
    emulator_port = env.integer("EMULATOR_PORT", 8765, minimum=1)
    base = Settings.embedded(state_dir, emulator_port=emulator_port)
    return replace(
        base,
        public_url=env.text("PUBLIC_URL", base.public_url) or base.public_url,
        conflict_policy=env.choice("CONFLICT_POLICY", ConflictPolicy, base.conflict_policy),
        smtp_url=env.text("SMTP_URL"),
        worker_threads=env.integer("WORKER_THREADS", base.worker_threads, minimum=1),
        api_threads=env.integer("API_THREADS", base.api_threads, minimum=1),
        log_level=env.text("LOG_LEVEL", base.log_level) or base.log_level,
    )


def _production_from_env(
    env: EnvReader, database_url: str | None, redis_url: str | None
) -> Settings:
    """Production settings; every problem is recorded on `env`, for the caller to raise."""
    return _tuned_from_env(env, _production_base(env, database_url, redis_url))


def _production_base(env: EnvReader, database_url: str | None, redis_url: str | None) -> Settings:
    """Where calsync runs and its keys: the settings `Settings` has no default for."""
    if database_url is None:
        env.problems.append(f"{PREFIX}DATABASE_URL is required when {PREFIX}REDIS_URL is set")
    if redis_url is None:
        env.problems.append(f"{PREFIX}REDIS_URL is required when {PREFIX}DATABASE_URL is set")
    env.url("DATABASE_URL", database_url, schemes=("postgresql", "postgresql+psycopg", "sqlite"))
    env.url("REDIS_URL", redis_url, schemes=("redis", "rediss", "unix"))
    google_api_base = env.text("GOOGLE_API_BASE", GOOGLE_API_BASE) or GOOGLE_API_BASE
    env.url("GOOGLE_API_BASE", google_api_base, schemes=("https", "http"))
    public_url = env.required("PUBLIC_URL")
    # Google only pushes to HTTPS; plain HTTP is fine when talking to the emulator.
    public_schemes = ("https", "http") if google_api_base != GOOGLE_API_BASE else ("https",)
    env.url("PUBLIC_URL", public_url, schemes=public_schemes)
    algorithm, jwt_secret, private_key, public_key = _jwt_keys(env)
    smtp_url = env.text("SMTP_URL")
    env.url("SMTP_URL", smtp_url, schemes=("smtp", "smtps", "smtp+starttls"))
    oauth_base = env.text("GOOGLE_OAUTH_BASE")
    env.url("GOOGLE_OAUTH_BASE", oauth_base, schemes=("https", "http"))
    return Settings(
        mode=Mode.PRODUCTION,
        database_url=database_url or "",
        redis_url=redis_url,
        public_url=public_url.rstrip("/"),
        jwt_algorithm=algorithm,
        jwt_secret=jwt_secret,
        jwt_private_key_file=private_key,
        jwt_public_key_file=public_key,
        jwt_issuer=env.text("JWT_ISSUER", "calsync") or "calsync",
        jwt_audience=env.text("JWT_AUDIENCE", "calsync-api") or "calsync-api",
        jwt_lifetime_seconds=env.integer("JWT_LIFETIME_SECONDS", 3600, minimum=60),
        encryption_keys=env.fernet_keys(env.required("ENCRYPTION_KEYS")),
        google_client_id=env.required("GOOGLE_CLIENT_ID"),
        google_client_secret=env.required("GOOGLE_CLIENT_SECRET"),
        google_api_base=google_api_base.rstrip("/"),
        google_oauth_base=oauth_base.rstrip("/") if oauth_base else None,
        smtp_url=smtp_url,
        smtp_sender=env.text("SMTP_SENDER", "calsync@localhost") or "calsync@localhost",
        vapid_private_key=env.text("VAPID_PRIVATE_KEY"),
        vapid_subject=env.text("VAPID_SUBJECT", "mailto:calsync@localhost") or "",
        conflict_policy=env.choice(
            "CONFLICT_POLICY", ConflictPolicy, ConflictPolicy.LAST_UPDATED_WINS
        ),
        state_dir=Path(env.text("STATE_DIR", ".") or "."),
    )


def _jwt_keys(env: EnvReader) -> tuple[JWTAlgorithm, str | None, Path | None, Path | None]:
    """``(algorithm, secret, private key file, public key file)``: HS256 needs a secret
    of 32 characters or more, the others a public key file."""
    algorithm = env.choice("JWT_ALGORITHM", JWTAlgorithm, JWTAlgorithm.HS256)
    jwt_secret = env.text("JWT_SECRET")
    private_key = env.path("JWT_PRIVATE_KEY_FILE")
    public_key = env.path("JWT_PUBLIC_KEY_FILE")
    if algorithm is JWTAlgorithm.HS256:
        if jwt_secret is None:
            env.problems.append(f"{PREFIX}JWT_SECRET is required (or choose {PREFIX}JWT_ALGORITHM)")
        elif len(jwt_secret) < 32:
            env.problems.append(f"{PREFIX}JWT_SECRET must be at least 32 characters")
    elif public_key is None:
        env.problems.append(
            f"{PREFIX}JWT_PUBLIC_KEY_FILE is required with {PREFIX}JWT_ALGORITHM={algorithm.value}"
        )
    return algorithm, jwt_secret, private_key, public_key


def _tuned_from_env(env: EnvReader, base: Settings) -> Settings:
    """`base` with the tunables (threads, intervals, limits, flags, metrics) read."""
    return replace(
        base,
        worker_threads=env.integer("WORKER_THREADS", 4, minimum=1),
        api_threads=env.integer("API_THREADS", Settings.api_threads, minimum=1),
        safety_net_interval_seconds=env.integer("SAFETY_NET_INTERVAL_SECONDS", 900, minimum=30),
        channel_renew_before_seconds=env.integer(
            "CHANNEL_RENEW_BEFORE_SECONDS", 86_400, minimum=60
        ),
        heartbeat_interval_seconds=env.integer("HEARTBEAT_INTERVAL_SECONDS", 30, minimum=1),
        scheduler_alive_file=_optional_path(env.text("SCHEDULER_ALIVE_FILE")),
        max_request_body_bytes=env.integer("MAX_REQUEST_BODY_BYTES", 1_048_576, minimum=1024),
        api_rate_limit_per_minute=env.integer("API_RATE_LIMIT_PER_MINUTE", 600, minimum=1),
        google_user_requests_per_minute=env.integer(
            "GOOGLE_USER_REQUESTS_PER_MINUTE", 600, minimum=1
        ),
        google_project_requests_per_minute=env.integer(
            "GOOGLE_PROJECT_REQUESTS_PER_MINUTE", 10_000, minimum=1
        ),
        google_daily_budget=env.integer("GOOGLE_DAILY_BUDGET", 1_000_000, minimum=100),
        poll_with_channel_seconds=env.integer("POLL_WITH_CHANNEL_SECONDS", 14_400, minimum=30),
        log_level=env.text("LOG_LEVEL", "INFO") or "INFO",
        run_emulator=env.flag("RUN_EMULATOR", False),
        read_model=env.flag("READ_MODEL", True),
        emulator_port=env.integer("EMULATOR_PORT", 8765, minimum=1),
        sync_min_interval_seconds=env.integer("SYNC_MIN_INTERVAL_SECONDS", 5, minimum=0),
        sync_lease_seconds=env.integer("SYNC_LEASE_SECONDS", 300, minimum=10),
        channel_ttl_seconds=env.integer("CHANNEL_TTL_SECONDS", 604_800, minimum=3600),
        outbox_max_attempts=env.integer("OUTBOX_MAX_ATTEMPTS", 12, minimum=1),
        send_updates=env.choice("SEND_UPDATES", SendUpdates, SendUpdates.ALL),
        audit_interval_seconds=env.integer("AUDIT_INTERVAL_SECONDS", 86_400, minimum=3600),
        audits_per_minute=env.integer("AUDITS_PER_MINUTE", 100, minimum=1),
        deletion_recheck_seconds=env.integer("DELETION_RECHECK_SECONDS", 900, minimum=60),
        address_rate_limit_per_minute=env.integer("ADDRESS_RATE_LIMIT_PER_MINUTE", 1200, minimum=1),
        trusted_proxies=env.networks("TRUSTED_PROXIES"),
        metrics_token=_metrics_token(env),
        metrics_port=env.integer("METRICS_PORT", 0, minimum=0) or None,
        state_metrics_cache_seconds=env.integer("STATE_METRICS_CACHE_SECONDS", 5, minimum=0),
    )


#: The shortest ``CALSYNC_METRICS_TOKEN`` accepted: long enough that it cannot be guessed.
MIN_METRICS_TOKEN = 32


def _metrics_token(env: EnvReader) -> str | None:
    token = env.text("METRICS_TOKEN")
    if token is not None and len(token) < MIN_METRICS_TOKEN:
        env.problems.append(
            f"{PREFIX}METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters"
        )
        return None
    return token


def _optional_path(raw: str | None) -> Path | None:
    """``raw`` as a path, or None when unset (the file need not exist yet)."""
    return Path(raw) if raw else None


def _dev_secrets(state_dir: Path) -> dict[str, str]:
    """Load, or create once, the development secrets of an embedded installation.

    Kept in a file of the state folder so that tokens printed by ``calsync dev`` survive a
    restart. Never used in production mode.
    """
    path = state_dir / DEV_SECRETS_FILE
    if path.is_file():
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict) and {"jwt_secret", "encryption_key"} <= loaded.keys():
            return {str(k): str(v) for k, v in loaded.items()}
    state_dir.mkdir(parents=True, exist_ok=True)
    created = {
        "jwt_secret": secrets.token_urlsafe(48),
        "encryption_key": Fernet.generate_key().decode(),
    }
    path.write_text(json.dumps(created))
    path.chmod(0o600)
    return created
