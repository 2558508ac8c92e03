"""Wiring: the one place that builds real adapters from settings.

:func:`bootstrap` gives a process its :class:`~calsync.services.Services` (re-exported
here, where most callers import it from): the database engine and sessions,
the broker with calsync's actors declared on it, and the clock. Web app, workers, scheduler
and tests all start here, so there is exactly one way things are put together.
"""

from __future__ import annotations

import functools
import os
import socket
from datetime import timedelta

from dramatiq import Broker

from calsync.config import JWTAlgorithm, Settings
from calsync.events import upkeep
from calsync.jobs import declare_jobs
from calsync.providers.base import ProviderSource
from calsync.providers.budget import daily_budget
from calsync.providers.google.factory import GoogleProviders
from calsync.providers.google.oauth import GoogleOAuth
from calsync.providers.quota import project_limit, quota_limiter
from calsync.queue import make_broker
from calsync.services import Clock, Services
from calsync.store.db import PoolSize, make_engine, make_session_factory
from calsync.store.secrets import Secret, SecretBox
from calsync.store.tables import utcnow
from calsync.store.zones import stored_zone
from calsync.sync.access_tokens import AccessTokens
from calsync.web.auth.oauth_state import OAuthStateConfig
from calsync.web.auth.tokens import JWTConfig

__all__ = ["Clock", "Services", "bootstrap", "jwt_config"]


def bootstrap(
    settings: Settings,
    *,
    broker: Broker | None = None,
    clock: Clock = utcnow,
    providers: ProviderSource | None = None,
    pool: PoolSize | None = None,
) -> Services:
    """Build the services of one process for ``settings``. Connects to nothing yet.

    ``providers`` replaces the Google clients (tests that need a provider double);
    ``pool`` sizes the database pool (an API process: `calsync.store.db.api_pool`).
    """
    engine = make_engine(settings.database_url, pool=pool)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        broker=broker or make_broker(settings),
        clock=clock,
        process_name=f"{socket.gethostname()}:{os.getpid()}",
        jwt=jwt_config(settings),
        secrets=SecretBox(settings.encryption_keys),
        oauth_state=OAuthStateConfig(Secret(settings.jwt_secret or settings.encryption_keys[0])),
        google_oauth=GoogleOAuth(settings),
    )
    services.budget = daily_budget(
        settings.redis_url,
        settings.google_daily_budget,
        clock=clock,
        spend_bound=project_limit(settings),
    )
    services.access_tokens = AccessTokens(
        services.sessions, services.secrets, services.google_oauth, clock
    )
    services.providers = providers or GoogleProviders(
        settings,
        services.access_tokens,
        quota_limiter(settings, budget=services.budget),
        shared_zones=functools.partial(stored_zone, services.sessions),
    )
    services.jobs = declare_jobs(services)
    # the read model's upkeep after the commit of a write that left it some (Z1)
    upkeep.watch(services.sessions, services.jobs.refresh_read_model.send)
    return services


def jwt_config(settings: Settings) -> JWTConfig:
    """The JWT configuration for ``settings``; reads key files when an asymmetric alg is set."""
    lifetime = timedelta(seconds=settings.jwt_lifetime_seconds)
    if settings.jwt_algorithm is JWTAlgorithm.HS256:
        return JWTConfig(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithm="HS256",
            secret=Secret(settings.jwt_secret or ""),
            lifetime=lifetime,
        )
    return JWTConfig.from_key_files(
        algorithm="RS256" if settings.jwt_algorithm is JWTAlgorithm.RS256 else "EdDSA",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        private_key_file=settings.jwt_private_key_file,
        public_key_file=settings.jwt_public_key_file,
        lifetime=lifetime,
    )
