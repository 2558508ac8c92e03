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
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.providers.base import CalendarProvider, Channel
from calsync.providers.errors import AuthRevoked, NotFound, Permanent, ProviderError
from calsync.store.sync_logs import LogKind, LogStatus, record
from calsync.store.tables import Calendar, User, WatchChannel

if TYPE_CHECKING:
    from calsync.bootstrap import Services

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
_KIND_EVENTS = "events"
_KIND_LIST = "calendar_list"


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


def _live(now: datetime) -> sa.ColumnElement[bool]:
    """Channels that still deliver: active and not expired."""
    return sa.and_(
        WatchChannel.status == "active",
        sa.or_(WatchChannel.expires_at.is_(None), WatchChannel.expires_at > now),
    )


#: Calendars that get an events channel: selected, not polled instead, events readable.
_WATCHABLE = sa.and_(
    Calendar.selected.is_(True),
    Calendar.poll_only.is_(False),
    Calendar.access_role != "freeBusyReader",
)


def webhook_address(services: Services) -> str:
    return services.settings.public_url.rstrip("/") + "/webhooks/google"


def _ttl(services: Services) -> timedelta:
    return timedelta(seconds=services.settings.channel_ttl_seconds)


def _open(
    services: Services,
    provider: CalendarProvider,
    *,
    user_id: uuid.UUID,
    calendar: tuple[uuid.UUID, str] | None,
) -> WatchChannel:
    """Open one channel on Google and return its (unsaved) row."""
    channel_id = str(uuid.uuid4())
    token = channel_token(services.settings.encryption_keys, channel_id)
    address = webhook_address(services)
    opened: Channel
    if calendar is None:
        opened = provider.watch_calendar_list(
            channel_id=channel_id, token=token, address=address, ttl=_ttl(services)
        )
    else:
        opened = provider.watch_events(
            calendar[1], channel_id=channel_id, token=token, address=address, ttl=_ttl(services)
        )
    return WatchChannel(
        id=uuid.UUID(channel_id),
        user_id=user_id,
        calendar_id=calendar[0] if calendar else None,
        kind=_KIND_LIST if calendar is None else _KIND_EVENTS,
        resource_id=opened.resource_id,
        resource_uri=opened.resource_uri,
        expires_at=opened.expiration,
        status="active",
    )


def ensure_channels(services: Services, user_id: uuid.UUID) -> int:
    """Open the channels the user lacks: one per selected, watchable calendar without a
    live channel, and one for the calendar list. Returns how many were opened.

    A calendar Google refuses to watch is marked ``poll_only`` (the safety net polls it).
    """
    now = services.clock()
    with services.sessions() as session:
        live = _live_channels(session, user_id, now)
        calendars = session.execute(
            sa.select(Calendar.id, Calendar.provider_calendar_id).where(
                Calendar.user_id == user_id, _WATCHABLE
            )
        ).all()
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
            session.add(row)
        opened += 1
    return opened


def _live_channels(session: Session, user_id: uuid.UUID, now: datetime) -> set[uuid.UUID | None]:
    """Calendar ids (None: the calendar list) with an active, unexpired channel."""
    rows = session.execute(
        sa.select(WatchChannel.calendar_id, WatchChannel.kind).where(
            WatchChannel.user_id == user_id, _live(now)
        )
    ).all()
    return {row.calendar_id if row.kind == _KIND_EVENTS else None for row in rows}


def _mark_unwatchable(
    services: Services,
    user_id: uuid.UUID,
    calendar: tuple[uuid.UUID, str] | None,
    err: ProviderError,
) -> None:
    with services.sessions.begin() as session:
        if calendar is not None:
            session.execute(
                sa.update(Calendar).where(Calendar.id == calendar[0]).values(poll_only=True)
            )
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


def _expiring(now: datetime, margin: timedelta) -> sa.ColumnElement[bool]:
    """Active channels of active users that expire within `margin` of `now`."""
    active_users = sa.select(User.id).where(User.status == "active")
    return sa.and_(
        WatchChannel.status == "active",
        WatchChannel.expires_at < now + margin,
        WatchChannel.user_id.in_(active_users),
    )


def claim_renewals(
    session: Session,
    *,
    now: datetime,
    margin: timedelta,
    limit: int = RENEW_PER_TICK,
    claim_for: timedelta = RENEW_CLAIM_FOR,
) -> list[uuid.UUID]:
    """Claim up to `limit` channels to renew (those expiring first) and return their ids.

    A claimed channel is not claimed again for `claim_for`, so a renewal queued by one
    tick is not queued again by the next while it waits; a renewal that did not happen
    (lost, failed, out of time) is claimed again once the claim runs out. The read goes
    through the ``(status, expires_at)`` index: O(channels due), not O(channels).
    """
    unclaimed = sa.or_(
        WatchChannel.renewal_claimed_at.is_(None),
        WatchChannel.renewal_claimed_at < now - claim_for,
    )
    due = sa.and_(_expiring(now, margin), unclaimed)
    ids = session.scalars(
        sa.select(WatchChannel.id).where(due).order_by(WatchChannel.expires_at).limit(limit)
    ).all()
    if not ids:
        return []
    claimed = session.scalars(
        sa.update(WatchChannel)
        .where(WatchChannel.id.in_(ids), due)
        .values(renewal_claimed_at=now)
        .returning(WatchChannel.id)
    ).all()
    return sorted(claimed, key=ids.index)


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
        rows = session.execute(
            sa.select(WatchChannel, Calendar.provider_calendar_id)
            .outerjoin(Calendar, Calendar.id == WatchChannel.calendar_id)
            .where(WatchChannel.id.in_(list(channel_ids)), _expiring(now, margin))
            .order_by(WatchChannel.expires_at)
        ).all()
    renewed = failed = 0
    for index, (old, google_calendar_id) in enumerate(rows):
        if budget is not None and monotonic() - started > budget.total_seconds():
            give_back(services, [row[0].id for row in rows[index:]])
            break
        if _renew_one(services, old, google_calendar_id):
            renewed += 1
        else:
            failed += 1
    return RenewReport(renewed, failed)


def _renew_one(services: Services, old: WatchChannel, google_calendar_id: str | None) -> bool:
    """Open the replacement of `old`, then stop `old`; False (logged) if it failed."""
    # The calendar's row exists: its channels are deleted with it (ON DELETE CASCADE).
    target = (old.calendar_id, str(google_calendar_id)) if old.calendar_id else None
    try:
        provider = services.providers.for_user(old.user_id)
        replacement = _open(services, provider, user_id=old.user_id, calendar=target)
        with services.sessions.begin() as session:
            session.add(replacement)
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
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.id.in_(channel_ids))
            .values(renewal_claimed_at=None)
        )


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
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.id == channel_id)
            .values(status="stopped", stopped_at=services.clock())
        )


def stop_known_channel(services: Services, channel_id: uuid.UUID) -> None:
    """Stop a channel calsync has a row for (a stopped one that still pushes)."""
    with services.sessions() as session:
        row = session.get(WatchChannel, channel_id)
        if row is None:
            return
        user_id, resource_id = row.user_id, row.resource_id
    stop_channel_quietly(services, services.providers.for_user(user_id), channel_id, resource_id)


def stop_user_channels(services: Services, user_id: uuid.UUID) -> int:
    """Stop every active channel of a user (on disconnect). Returns how many."""
    with services.sessions() as session:
        channels = session.execute(
            sa.select(WatchChannel.id, WatchChannel.resource_id).where(
                WatchChannel.user_id == user_id, WatchChannel.status == "active"
            )
        ).all()
    provider = services.providers.for_user(user_id)
    for channel in channels:
        stop_channel_quietly(services, provider, channel.id, channel.resource_id)
    with services.sessions.begin() as session:  # also when Google could not be told
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.user_id == user_id, WatchChannel.status == "active")
            .values(status="stopped", stopped_at=services.clock())
        )
    return len(channels)


def calendars_without_channel(session: Session, now: datetime) -> list[uuid.UUID]:
    """Selected, watchable calendars of active users that have no live channel."""
    return list(session.scalars(_without_channel(sa.select(Calendar.id), now)))


def _without_channel(query: sa.Select[Any], now: datetime) -> sa.Select[Any]:
    """`query` over the selected, watchable calendars of active users without a live
    channel."""
    live = (
        sa.select(WatchChannel.calendar_id)
        .where(_live(now), WatchChannel.calendar_id.is_not(None))
        .scalar_subquery()
    )
    return query.join(User, User.id == Calendar.user_id).where(
        User.status == "active", _WATCHABLE, Calendar.id.not_in(live)
    )


def stop_inactive_users_channels(services: Services, *, limit: int = STOP_PER_RUN) -> int:
    """Stop the active channels of users who are disabled or must sign in again (at most
    `limit` users per call); returns how many. Google not being told (a revoked grant)
    still marks them stopped."""
    has_live = (
        sa.select(WatchChannel.id)
        .where(WatchChannel.user_id == User.id, WatchChannel.status == "active")
        .exists()
    )
    with services.sessions() as session:
        users = session.scalars(
            sa.select(User.id).where(User.status != "active", has_live).limit(limit)
        ).all()
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
        users = session.scalars(
            _without_channel(sa.select(Calendar.user_id), services.clock()).distinct().limit(limit)
        ).all()
    opened = 0
    for user_id in users:
        try:
            opened += ensure_channels(services, user_id)
        except Exception as err:
            log.warning("could not open the missing channels of user %s: %r", user_id, err)
    return opened
