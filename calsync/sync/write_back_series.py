"""A series' exceptions brought back with its master when Google refused for good a
write of the master because its author may only read the calendar now (decision JJ1).

A this-and-following split cuts the master (a patch) and deletes locally the exceptions
from the split point on, without writes of their own: Google drops nothing when a
series is cut. When Google refuses the cut (403 ``requiredAccessLevel``), the master
gets Google's copy back (JD1) and those exceptions must come back too, as Google holds
them now: each is read from Google (one GET), stored live, or cancelled if Google
cancelled it, and left deleted if Google no longer has it. Each is judged against the
restored master as the pull judges a listed exception (`calsync.sync.stray_exceptions`):
one whose instance the series does not make is stored cancelled, shown nowhere. Which
exceptions: those of the series deleted locally with no queued write
(`event_queries.dropped_exceptions`), whatever deleted them, so no record of the split is
kept. Rows edited meanwhile (another version) are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from calsync.domain.models import Event, EventStatus
from calsync.providers.errors import NotFound
from calsync.services import Services
from calsync.store import event_changes
from calsync.store.event_queries import dropped_exceptions
from calsync.store.events import StoredEvent
from calsync.sync.stray_exceptions import stray_stored
from calsync.sync.write_back_call import Write

__all__ = ["ExceptionCopy", "exceptions_kept", "restore_exceptions"]


@dataclass(frozen=True, slots=True)
class ExceptionCopy:
    """A deleted exception row and what Google holds of it: `remote` (None: Google has
    no such event), `shown` (`remote`, cancelled if the series makes no instance there)."""

    row: StoredEvent
    remote: Event | None
    shown: Event | None


def exceptions_kept(
    services: Services, write: Write, stored: StoredEvent, master: Event
) -> list[ExceptionCopy]:
    """Google's copies of the exceptions of the series `stored` (a live master whose
    write Google refused; `master`: Google's copy of it) that were deleted locally with
    no write of their own. Empty for anything but a live series. Raises `ProviderError`
    when one cannot be read."""
    if not stored.event.is_recurring or stored.deleted_at is not None:
        return []
    series_id = stored.event.provider_event_id or write.google_id
    with services.sessions() as session:
        rows = dropped_exceptions(session, calendar_id=stored.calendar_id, series_id=series_id)
    copies: list[ExceptionCopy] = []
    for row in rows:
        google_id = row.event.provider_event_id
        if google_id is None:
            continue
        try:
            remote: Event | None = write.provider.get_event(write.calendar, google_id)
        except NotFound:
            remote = None
        copies.append(ExceptionCopy(row, remote, _shown(remote, master)))
    return copies


def _shown(remote: Event | None, master: Event) -> Event | None:
    if remote is None or remote.status == EventStatus.CANCELLED:
        return remote
    stray = stray_stored([remote], {remote.recurring_event_id or "": master})
    return stray[0] if stray else remote


def restore_exceptions(session: Session, copies: Sequence[ExceptionCopy]) -> None:
    """Store `copies` in the caller's transaction: each row Google holds is live again
    with Google's copy (as shown), ``synced``; one Google no longer has stays deleted,
    ``synced``. A row whose version moved since it was read is left as it is."""
    for copy in copies:
        row = copy.row
        if copy.remote is None or copy.shown is None:
            event_changes.record_pushed(
                session, row.id, pushed=row.event, remote=None, version=row.version
            )
            continue
        saved = event_changes.record_merged(
            session,
            row.id,
            merged=copy.shown,
            remote=copy.remote,
            version=row.version,
            conflict=None,
            revive=True,
        )
        if saved is not None:
            event_changes.record_pushed(
                session, row.id, pushed=saved.event, remote=copy.remote, version=saved.version
            )
