"""The two calls the events API and the sync engine make whenever an event row changes.

Both run inside the caller's transaction (they never commit, never touch the network and
never enqueue), so a rolled-back change leaves no notice behind and a committed one always
has its notices and reminders: the scheduler sends them.

- :func:`event_changed` records change notices for the people of the event other than the
  one who changed it (see :mod:`calsync.notify.changes`).
- :func:`reschedule_reminders` replans the event's reminders (see
  :mod:`calsync.notify.reminders`): moved occurrences get new reminders, removed ones lose
  their pending reminders, and nothing already sent is sent again.

Typical use, after writing the row::

    event_changed(session, before=old, after=new, event_id=row.id,
                  actor_user_id=user.id, source="api")
    reschedule_reminders(session, row.id)
"""

from __future__ import annotations

from calsync.notify.changes import event_changed
from calsync.notify.reminders import reschedule_reminders

__all__ = ["event_changed", "reschedule_reminders"]
