"""Stray exceptions that come back when their series makes their instance again
(decision JJ2; JH4 before).

The pull stores an exception whose series no longer has its instance (a series cut
short at Google) as its cancelled version, with Google's etag (`stray_exceptions`,
JH1/JH2): Google keeps the exception, unlisted. When another client extends the series
again (its UNTIL moved later), Google lists that exception again among the series'
instances, but its sync listing carries only the master (the exception did not change),
and a listing that does carry it carries the etag calsync holds: either way the pull
changed nothing, and calsync showed nothing where Google shows the instance.

So before a listing is stored, for each listed live master whose rule or start differ
from its stored row: its stored cancelled exceptions whose original start the stored
rule did not make and the listed rule makes (the ones a stray judgement may have
cancelled) are read from Google, one GET each unless the listing holds them, and those
Google holds live go into the listing as drifted rows (`reconcile.apply_changes`'s
`refreshed`: overwritten although their etag is the one stored). One Google really
cancelled stays cancelled: Google says so. Listings without a reshaped master cost one
read of the listed masters' rows, and nothing for listings without live masters.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from calsync.domain.models import Event, EventStatus
from calsync.providers.base import CalendarProvider
from calsync.providers.errors import NotFound
from calsync.services import Services
from calsync.store.events import to_event
from calsync.store.listed_events import cancelled_exceptions_of_masters
from calsync.sync.stray_exceptions import reshaped_masters, stray_stored

__all__ = ["returning_exceptions"]


def returning_exceptions(
    services: Services,
    provider: CalendarProvider,
    *,
    calendar_id: uuid.UUID,
    google_calendar_id: str,
    events: Sequence[Event],
) -> tuple[list[Event], frozenset[str]]:
    """Google's live copies of the stored cancelled exceptions that the listed `events`'
    reshaped masters make an instance for again, that `events` does not hold (to add to
    the listing), and the Google ids of those the reconcile must overwrite although
    their etag is the one stored (listed or not). Raises `ProviderError` from a GET."""
    listed = {e.provider_event_id: e for e in events if e.provider_event_id}
    masters = {
        google_id: e
        for google_id, e in listed.items()
        if e.recurrence and e.status != EventStatus.CANCELLED
    }
    if not masters:
        return [], frozenset()
    with services.sessions() as session:
        rows, exceptions = cancelled_exceptions_of_masters(session, calendar_id, list(masters))
    stored = {google_id: to_event(row) for google_id, row in rows.items()}
    reshaped = reshaped_masters(masters, stored)
    if not reshaped:
        return [], frozenset()
    added: list[Event] = []
    refreshed: set[str] = set()
    for row in exceptions:
        event = to_event(row)
        if not _made_again(event, before=stored, now=reshaped):
            continue
        google_id = row.google_event_id
        copy = listed.get(google_id) or _google_copy(provider, google_calendar_id, google_id)
        if copy is None or copy.status == EventStatus.CANCELLED:
            continue
        if google_id not in listed:
            added.append(copy)
        if copy.etag == row.etag:
            refreshed.add(google_id)
    return added, frozenset(refreshed)


def _made_again(event: Event, *, before: dict[str, Event], now: dict[str, Event]) -> bool:
    """Whether the exception's series, which had no instance at its original start in
    its stored version (`before`), has one in its listed version (`now`)."""
    series = event.recurring_event_id or ""
    if series not in now or series not in before:
        return False
    return bool(stray_stored([event], {series: before[series]})) and not stray_stored(
        [event], {series: now[series]}
    )


def _google_copy(provider: CalendarProvider, calendar: str, google_id: str) -> Event | None:
    try:
        return provider.get_event(calendar, google_id)
    except NotFound:
        return None
