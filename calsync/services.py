"""The services of a calsync process: what its use cases work with.

Built by `calsync.bootstrap.bootstrap`, the one place that wires real adapters. Kept
apart from the wiring so that the use cases and the actors can import the type without
importing the wiring, which imports them: no import cycle, not even a type-checking one
(issue 20 item 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dramatiq import Broker
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from calsync.config import Settings
from calsync.job_handles import Jobs
from calsync.providers.base import ProviderSource
from calsync.providers.budget import DailyBudget
from calsync.providers.google.oauth import GoogleOAuth
from calsync.store.secrets import SecretBox
from calsync.sync.access_tokens import AccessTokens
from calsync.web.auth.oauth_state import OAuthStateConfig
from calsync.web.auth.tokens import JWTConfig

__all__ = ["Clock", "Services"]

Clock = Callable[[], datetime]


@dataclass
class Services:
    """What a calsync process works with. Built by :func:`bootstrap`; close it when done."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    broker: Broker
    clock: Clock
    process_name: str
    jwt: JWTConfig
    secrets: SecretBox
    oauth_state: OAuthStateConfig
    google_oauth: GoogleOAuth
    #: The project's daily Google budget (`calsync.providers.budget`), which the quota
    #: limiter spends and the sweeps and jobs consult.
    budget: DailyBudget = field(init=False)
    access_tokens: AccessTokens = field(init=False)
    providers: ProviderSource = field(init=False)
    jobs: Jobs = field(init=False)

    def close(self) -> None:
        """Release the broker's, the providers', OAuth's and the database's connections."""
        self.providers.close()
        self.budget.close()
        self.google_oauth.close()
        self.broker.close()
        self.engine.dispose()
