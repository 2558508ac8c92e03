"""Push channels: open, verify, renew and stop them (design.md section 5).

Every selected calendar gets an ``events.watch`` channel and every user a
``calendarList.watch`` channel. A channel id is a fresh UUID; its token is an HMAC of
the id under calsync's secret keys, so it is verified without storing it and survives
key rotation (any configured key is accepted; the newest signs). Channels are renewed a
while before they expire: the new one is opened first and the old one stopped after,
and both are accepted in between. A calendar Google refuses to watch is polled instead
(``poll_only``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from calsync.config import Settings
from calsync.providers.base import CalendarProvider, Channel
from calsync.providers.errors import AuthRevoked, NotFound, Permanent, ProviderError
from calsync.services import Services
from calsync.store import watch_channels
from calsync.store.sync_logs import LogKind, LogStatus, record
from calsync.store.watch_channels import (
    KIND_EVENTS,
    KIND_LIST,
    NewChannel,
    calendars_without_channel,
)

__all__ = [
    "RenewReport",
    "calendars_without_channel",
    "channel_token",
    "claim_renewals",
    "ensure_channels",
    "give_back",
    "renew_channels",
    "renew_claimed",
    "stop_channel_quietly",
    "stop_known_channel",
    "stop_user_channels",
    "token_matches",
    "webhook_address",
]

log = logging.getLogger(__name__)


def _signature(key: str, channel_id: str) -> str:
    return hmac.new(
        key.encode(), b"calsync-channel:" + channel_id.encode(), hashlib.sha256
    ).hexdigest()


def channel_token(keys: Sequence[str], channel_id: str) -> str:
    """The token Google echoes back on every notification of `channel_id`."""
    return _signature(keys[0], channel_id)


def token_matches(keys: Sequence[str], channel_id: str, token: str) -> bool:
    """Whether `token` is the channel's, under any configured key, in constant time."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(_signature(key, channel_id), token)
    return matched


def webhook_address(settings: Settings) -> str:
    """Where Google sends the notifications of the channels calsync opens."""
    return settings.public_url.rstrip("/") + "/webhooks/google"


def _ttl(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.channel_ttl_seconds)


def _open(
    services: Services,
    provider: CalendarProvider,
    *,
    user_id: uuid.UUID,
    calendar: tuple[uuid.UUID, str] | None,
) -> NewChannel:
    """Open one channel on Google and return what to store of it."""
    channel_id = str(uuid.uuid4())
    token = channel_token(services.settings.encryption_keys, channel_id)
    address = webhook_address(services.settings)
    opened: Channel
    if calendar is None:
        opened = provider.watch_calendar_list(
            channel_id=channel_id, token=token, address=address, ttl=_ttl(services.settings)
        )
    else:
        opened = provider.watch_events(
            calendar[1],
            channel_id=channel_id,
            token=token,
            address=address,
            ttl=_ttl(services.settings),
        )
    return NewChannel(
        id=uuid.UUID(channel_id),
        user_id=user_id,
        calendar_id=calendar[0] if calendar else None,
        kind=KIND_LIST if calendar is None else KIND_EVENTS,
        resource_id=opened.resource_id,
        resource_uri=opened.resource_uri,
        expires_at=opened.expiration,
    )


def ensure_channels(services: Services, user_id: uuid.UUID) -> int:
    """Open the channels the user lacks: one per selected, watchable calendar without a
    live channel, and one for the calendar list. Returns how many were opened.

    A calendar Google refuses to watch is marked ``poll_only`` (the safety net polls it).
    """
    now = services.clock()
    with services.sessions() as session:
        live = watch_channels.live_targets(session, user_id, now)
        calendars = watch_channels.watchable_calendars(session, user_id)
    provider = services.providers.for_user(user_id)
    opened = 0
    wanted: list[tuple[uuid.UUID, str] | None] = [
        (row.id, row.provider_calendar_id) for row in calendars if row.id not in live
    ]
    if None not in live:
        wanted.append(None)
    for calendar in wanted:
        try:
            row = _open(services, provider, user_id=user_id, calendar=calendar)
        except (NotFound, Permanent) as err:
            _mark_unwatchable(services, user_id, calendar, err)
            continue
        with services.sessions.begin() as session:
            watch_channels.add(session, row)
        opened += 1
    return opened


def _mark_unwatchable(
    services: Services,
    user_id: uuid.UUID,
    calendar: tuple[uuid.UUID, str] | None,
    err: ProviderError,
) -> None:
    with services.sessions.begin() as session:
        if calendar is not None:
            watch_channels.mark_poll_only(session, calendar[0])
        record(
            session,
            user_id=user_id,
            calendar_id=calendar[0] if calendar else None,
            kind=LogKind.CHANNEL,
            status=LogStatus.ERROR,
            at=services.clock(),
            message=f"Google refused a push channel ({err.message}); polling instead",
        )


@dataclass(frozen=True, slots=True)
class RenewReport:
    renewed: int
    failed: int
    stopped: int = 0
    opened: int = 0


#: How many users' missing channels one renewal run opens (the next run goes on).
REOPEN_PER_RUN = 100
#: How many inactive users' channels one renewal run stops (the next run goes on).
STOP_PER_RUN = 100
#: Channels per renewal job: about 3 s of Google calls at ~31 ms a channel (decisions Q1).
RENEW_BATCH = 100
#: At most this many channels are claimed for renewal per scheduler tick.
RENEW_PER_TICK = 5000
#: A claimed renewal not done after this is claimed again (a lost message, a dead worker,
#: a job that ran out of time, a failure).
RENEW_CLAIM_FOR = timedelta(minutes=15)
#: A renewal job starts no new channel after this; what is left is given back for the
#: next tick. The job's hard time limit (`RENEW_TIME_LIMIT`) is twice it.
RENEW_JOB_BUDGET = timedelta(seconds=60)
RENEW_TIME_LIMIT = 2 * RENEW_JOB_BUDGET


def maintain_channels(services: Services) -> RenewReport:
    """The channel sweep, all in this call: renew what expires soon (`renew_channels`),
    stop the channels of users who are no longer active (`stop_inactive_users_channels`:
    a disabled user's calendars get no pushes), and open the missing channels of active
    users (`reopen_missing_channels`: a user enabled again, or a channel that could not
    be opened before). The scheduler fans renewals out instead (`claim_renewals`)."""
    renewal = renew_channels(services)
    stopped = stop_inactive_users_channels(services)
    opened = reopen_missing_channels(services)
    return RenewReport(renewal.renewed, renewal.failed, stopped, opened)


def claim_renewals(
    session: Session,
    *,
    now: datetime,
    margin: timedelta,
    limit: int = RENEW_PER_TICK,
    claim_for: timedelta = RENEW_CLAIM_FOR,
) -> list[uuid.UUID]:
    """Claim up to `limit` channels to renew (those expiring first) and return their ids;
    a claimed channel is not claimed again for `claim_for` (`watch_channels.claim_renewals`)."""
    return watch_channels.claim_renewals(
        session, now=now, margin=margin, limit=limit, claim_for=claim_for
    )


def renew_channels(services: Services) -> RenewReport:
    """Replace every active channel that expires within the renewal margin, in this call
    (batch after batch of `claim_renewals`, each with `renew_claimed`)."""
    renewed = failed = 0
    margin = timedelta(seconds=services.settings.channel_renew_before_seconds)
    while True:
        with services.sessions.begin() as session:
            batch = claim_renewals(session, now=services.clock(), margin=margin, limit=RENEW_BATCH)
        if not batch:
            return RenewReport(renewed, failed)
        # (What fails stays claimed, so the loop ends when every due channel was tried.)
        report = renew_claimed(services, batch)
        renewed, failed = renewed + report.renewed, failed + report.failed


def renew_claimed(
    services: Services,
    channel_ids: Sequence[uuid.UUID],
    *,
    budget: timedelta | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> RenewReport:
    """Replace the given channels, those that still need it (active, expiring within
    the renewal margin, their user active); the others are skipped.

    The replacement is opened and saved first, then the old one is stopped, so there is
    no moment without a channel; a failure leaves the old one running (claimed again
    when its claim runs out). After `budget` no further channel is started: the rest are
    given back (their claim cleared) for the next tick, so a job never runs into its
    time limit because Google is slow.
    """
    started = monotonic()
    now = services.clock()
    margin = timedelta(seconds=services.settings.channel_renew_before_seconds)
    with services.sessions() as session:
        rows = watch_channels.renewal_rows(session, channel_ids, now=now, margin=margin)
    renewed = failed = 0
    for index, old in enumerate(rows):
        if budget is not None and monotonic() - started > budget.total_seconds():
            give_back(services, [row.id for row in rows[index:]])
            break
        if _renew_one(services, old):
            renewed += 1
        else:
            failed += 1
    return RenewReport(renewed, failed)


def _renew_one(services: Services, old: Any) -> bool:
    """Open the replacement of `old` (a row of `watch_channels.renewal_rows`), then stop
    `old`; False (logged) if it failed."""
    # The calendar's row exists: its channels are deleted with it (ON DELETE CASCADE).
    target = (old.calendar_id, str(old.provider_calendar_id)) if old.calendar_id else None
    try:
        provider = services.providers.for_user(old.user_id)
        replacement = _open(services, provider, user_id=old.user_id, calendar=target)
        with services.sessions.begin() as session:
            watch_channels.add(session, replacement)
    except Exception as err:
        # One channel's failure (Google's, or a token that no longer decrypts, or a
        # bug) must not stop the others' renewal; the old channel keeps running.
        _renewal_failed(services, old.user_id, old.calendar_id, old.id, err)
        return False
    # Marked stopped even if Google could not be told: it is replaced, and must not be
    # renewed again when its claim runs out; if it still pushes, the webhook stops it
    # (`stop_known_channel`).
    stop_channel_quietly(services, provider, old.id, old.resource_id, mark_anyway=True)
    return True


def give_back(services: Services, channel_ids: list[uuid.UUID]) -> None:
    """Clear the renewal claim of channels a job had no time left for."""
    with services.sessions.begin() as session:
        watch_channels.give_back(session, channel_ids)


def _renewal_failed(
    services: Services,
    user_id: uuid.UUID,
    calendar_id: uuid.UUID | None,
    channel_id: uuid.UUID,
    err: Exception,
) -> None:
    """Log a channel that could not be renewed (retried on the next run) in the sync log,
    naming the exception's class (and a provider error's message, never other text)."""
    if isinstance(err, ProviderError):
        log.warning("could not renew channel %s: %r", channel_id, err)
        message = f"{type(err).__name__}: {err.message}"
    else:
        log.error("could not renew channel %s", channel_id, exc_info=err)
        message = f"{type(err).__name__} (unexpected; see the log)"
    try:
        with services.sessions.begin() as session:
            record(
                session,
                user_id=user_id,
                calendar_id=calendar_id,
                kind=LogKind.CHANNEL,
                status=LogStatus.RETRY,
                at=services.clock(),
                message=f"could not renew a push channel: {message}"[:2000],
            )
    except Exception:
        log.exception("could not record the failed renewal of channel %s", channel_id)


def stop_channel_quietly(
    services: Services,
    provider: CalendarProvider,
    channel_id: uuid.UUID,
    resource_id: str | None,
    *,
    mark_anyway: bool = False,
) -> None:
    """Stop one channel on Google and mark it stopped; Google not knowing it is fine.
    When Google fails otherwise the row stays active (to be stopped again later), unless
    `mark_anyway`."""
    try:
        if resource_id:
            provider.stop_channel(channel_id=str(channel_id), resource_id=resource_id)
    except (NotFound, AuthRevoked):
        pass
    except ProviderError as err:
        log.warning("could not stop channel %s: %r", channel_id, err)
        if not mark_anyway:
            return
    with services.sessions.begin() as session:
        watch_channels.mark_stopped(session, channel_id, services.clock())


def stop_known_channel(services: Services, channel_id: uuid.UUID) -> None:
    """Stop a channel calsync has a row for (a stopped one that still pushes)."""
    with services.sessions() as session:
        row = watch_channels.channel(session, channel_id)
        if row is None:
            return
        user_id, resource_id = row.user_id, row.resource_id
    stop_channel_quietly(services, services.providers.for_user(user_id), channel_id, resource_id)


def stop_user_channels(services: Services, user_id: uuid.UUID) -> int:
    """Stop every active channel of a user (on disconnect). Returns how many."""
    with services.sessions() as session:
        channels = watch_channels.active_of_user(session, user_id)
    provider = services.providers.for_user(user_id)
    for channel in channels:
        stop_channel_quietly(services, provider, channel.id, channel.resource_id)
    with services.sessions.begin() as session:  # also when Google could not be told
        watch_channels.stop_all_of_user(session, user_id, services.clock())
    return len(channels)


def stop_inactive_users_channels(services: Services, *, limit: int = STOP_PER_RUN) -> int:
    """Stop the active channels of users who are disabled or must sign in again (at most
    `limit` users per call); returns how many. Google not being told (a revoked grant)
    still marks them stopped."""
    with services.sessions() as session:
        users = watch_channels.inactive_users_with_channels(session, limit=limit)
    stopped = 0
    for user_id in users:
        try:
            stopped += stop_user_channels(services, user_id)
        except Exception:
            log.exception("could not stop the channels of inactive user %s", user_id)
    return stopped


def reopen_missing_channels(services: Services, *, limit: int = REOPEN_PER_RUN) -> int:
    """Open the channels that active users lack (at most `limit` users per call); returns
    how many were opened."""
    with services.sessions() as session:
        users = watch_channels.users_missing_channels(session, services.clock(), limit=limit)
    opened = 0
    for user_id in users:
        try:
            opened += ensure_channels(services, user_id)
        except Exception as err:
            log.warning("could not open the missing channels of user %s: %r", user_id, err)
    return opened
