"""``EmulatorState``: the emulator's whole in-memory world, behind one lock.

It owns users and tokens (``accounts``), calendars with their events (``calendars``),
watch channels, injected faults, the request log, push-delivery records, rate-limit
counters, the clock and the run-time config. Route code takes ``state.lock`` (an RLock)
around each operation; operations are short and never do I/O under it. Push messages are
only queued (``outbox``) under the lock; ``push.PushDispatcher`` sends them on its own
thread, so no request waits for a delivery.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from calsync.emulator import errors, ids, timefmt
from calsync.emulator.accounts import FULL_SCOPES, AccessToken, AccountStore, User
from calsync.emulator.calendars import ROLES, CalendarRecord
from calsync.emulator.channels import (
    Channel,
    ChannelRegistry,
    PushMessage,
    ResourceKind,
    resource_id_for,
)
from calsync.emulator.clock import EmulatorClock
from calsync.emulator.config import DEFAULT_CLIENT_ID, EmulatorConfig
from calsync.emulator.faults import FaultSet
from calsync.emulator.ratelimit import RollingCounter
from calsync.emulator.request_log import RequestLog

DELIVERY_LOG_LIMIT = 10_000
#: Google's push guide: a channel id is at most 64 characters.
MAX_CHANNEL_ID = 64


class EmulatorState:
    """Thread-safe in-memory store; every public method takes ``lock`` itself."""

    def __init__(self, *, clock: EmulatorClock | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock or EmulatorClock()
        self.config = EmulatorConfig()
        self.outbox: queue.Queue[PushMessage] = queue.Queue()
        self.generation = 0  # bumped by reset(): work queued before it is void
        self._init_data()

    def _init_data(self) -> None:
        self.accounts = AccountStore()
        self.calendars: dict[str, CalendarRecord] = {}
        self.channels = ChannelRegistry()
        self.faults = FaultSet()
        self.requests = RequestLog(self.config.request_log_limit)
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_LIMIT)
        self.user_rate = RollingCounter()
        self.project_rate = RollingCounter()

    def reset(self) -> None:
        """Forget everything: data, faults, logs, config and clock offset."""
        with self.lock:
            self.generation += 1
            self.config = EmulatorConfig()
            self._init_data()
            self.clock.reset()
            while True:
                try:
                    self.outbox.get_nowait()
                except queue.Empty:
                    break

    # users, calendars, tokens ---------------------------------------------------------

    def create_user(self, email: str, *, name: str | None = None, time_zone: str = "UTC") -> User:
        """The user ``email`` with a primary calendar whose id is the email (idempotent)."""
        if "@" not in email:
            raise ValueError(f"not an email address: {email!r}")
        timefmt.zone(time_zone, location="timeZone")
        with self.lock:
            user = self.accounts.ensure_user(email, name=name, time_zone=time_zone)
            primary = self.calendars.get(user.email)
            if primary is None or primary.deleted:  # deleted: the account was recreated
                self.create_calendar(
                    user.email, summary=user.email, calendar_id=user.email, time_zone=time_zone
                )
            return user

    def recreate_user(self, email: str) -> User:
        """Delete the account ``email`` and create a new one with the same email, as when
        someone gives up a Google address and another account takes it: the new account
        has a new ``sub``, an empty primary calendar, no grants, and no access to what
        the old one owned or was shared. Raises KeyError for an unknown email."""
        with self.lock:
            old = self.accounts.user(email)
            if old is None:
                raise KeyError(email)
            for calendar_id, calendar in list(self.calendars.items()):
                if calendar.deleted:
                    continue
                if calendar.owner == old.email:
                    self.delete_calendar(calendar_id)
                else:
                    calendar.acl.pop(old.email, None)
            self.accounts.forget_user(old.email)
            return self.create_user(old.email, name=old.name, time_zone=old.time_zone)

    def create_calendar(
        self,
        owner: str,
        *,
        summary: str,
        calendar_id: str | None = None,
        time_zone: str | None = None,
        description: str | None = None,
    ) -> CalendarRecord:
        """A calendar owned by ``owner`` (created if new), in the owner's calendar list."""
        with self.lock:
            user = self.accounts.ensure_user(owner)
            if user.email not in self.calendars and calendar_id != user.email:
                self.create_user(user.email)
            cal_id = calendar_id or ids.new_calendar_id()
            if cal_id in self.calendars and not self.calendars[cal_id].deleted:
                raise ValueError(f"calendar {cal_id} already exists")
            calendar = CalendarRecord(
                id=cal_id,
                summary=summary,
                owner=user.email,
                time_zone=time_zone or user.time_zone,
                description=description,
                acl={user.email: "owner"},
            )
            self.calendars[cal_id] = calendar
            user.touch_entry(cal_id)
            self.notify_calendar_list(user.email)
            return calendar

    def share_calendar(self, calendar_id: str, email: str, role: str) -> CalendarRecord:
        """Give ``email`` (created if new) ``role`` on a calendar and list it for them."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        with self.lock:
            calendar = self.calendars.get(calendar_id)
            if calendar is None or calendar.deleted:
                raise KeyError(calendar_id)
            user = self.create_user(email)
            if role == "none":
                calendar.acl.pop(user.email, None)
                user.remove_entry(calendar_id)
            else:
                calendar.acl[user.email] = role
                user.touch_entry(calendar_id)
            self.notify_calendar_list(user.email)
            return calendar

    def delete_calendar(self, calendar_id: str) -> None:
        """Delete a (secondary) calendar: gone from every list, its channels told."""
        with self.lock:
            calendar = self.calendars.get(calendar_id)
            if calendar is None or calendar.deleted:
                raise KeyError(calendar_id)
            calendar.deleted = True
            for email in list(calendar.acl):
                user = self.accounts.user(email)
                if user is not None:
                    user.remove_entry(calendar_id)
                    self.notify_calendar_list(user.email)
            self._notify("events", calendar_id, "not_exists")

    def issue_tokens(
        self,
        email: str,
        *,
        scopes: tuple[str, ...] = FULL_SCOPES,
        client_id: str = DEFAULT_CLIENT_ID,
    ) -> AccessToken:
        """A fresh grant (access + refresh token) for ``email``, as after consent."""
        with self.lock:
            user = self.create_user(email)
            return self.accounts.issue(
                user.email,
                client_id=client_id,
                scopes=scopes,
                with_refresh_token=True,
                now=self.clock.now(),
                ttl=timedelta(seconds=self.config.token_ttl_seconds),
            )

    def visible_calendar(self, email: str, calendar_id: str) -> tuple[CalendarRecord, str]:
        """The calendar ``calendar_id`` (``primary`` allowed) and ``email``'s role on it.

        Raises 404 ``notFound`` when it does not exist or the user has no access.
        """
        with self.lock:
            cal_id = email if calendar_id == "primary" else calendar_id
            calendar = self.calendars.get(cal_id)
            if calendar is None or calendar.deleted:
                raise errors.not_found()
            role = calendar.role_of(email)
            if role == "none":
                raise errors.not_found()
            return calendar, role

    # watch channels and push ----------------------------------------------------------

    def open_channel(
        self,
        body: dict[str, Any],
        *,
        kind: ResourceKind,
        target: str,
        owner: str,
        resource_uri: str,
        event_types: frozenset[str] | None = None,
    ) -> Channel:
        """Create a channel from a watch body, queue its ``sync`` message; 400 if bad."""
        channel_id = body.get("id")
        address = body.get("address")
        if not isinstance(channel_id, str) or not channel_id:
            raise errors.required("Missing channel id.", "id")
        if len(channel_id) > MAX_CHANNEL_ID:  # the push guide: "Maximum length: 64 characters"
            raise errors.invalid("Channel id too long.", "id")
        if body.get("type") not in ("web_hook", "webhook"):
            raise errors.invalid("Invalid channel type; use web_hook.", "type")
        parsed = urlparse(address if isinstance(address, str) else "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise errors.invalid("Invalid channel address; an http(s) URL is required.")
        token = body.get("token")
        params = body.get("params") or {}
        with self.lock:
            now = self.clock.now()
            ttl = self._channel_ttl(params)
            existing = self.channels.get(channel_id)
            if existing is not None and existing.active_at(now):
                raise errors.GoogleApiError(
                    400, "channelIdNotUnique", f"Channel id {channel_id} not unique"
                )
            channel = Channel(
                id=channel_id,
                kind=kind,
                target=target,
                owner=owner,
                address=str(address),
                token=token if isinstance(token, str) else None,
                resource_id=resource_id_for(kind, target),
                resource_uri=resource_uri,
                expiration=now + timedelta(seconds=ttl),
                created=now,
                event_types=event_types,
            )
            self.channels.add(channel)
            self._queue(channel, "sync")
            return channel

    def _channel_ttl(self, params: Any) -> int:
        raw = params.get("ttl") if isinstance(params, dict) else None
        if raw is None:
            ttl = self.config.default_channel_ttl_seconds
        else:
            try:
                ttl = int(str(raw))
            except ValueError:
                raise errors.invalid("Invalid ttl value.", "params.ttl") from None
            if ttl <= 0:
                raise errors.invalid("Invalid ttl value.", "params.ttl")
        return min(ttl, self.config.max_channel_ttl_seconds)

    def stop_channel(self, channel_id: str, resource_id: str, *, user: str) -> None:
        """channels.stop; 404 when there is no such channel for this resource."""
        with self.lock:
            channel = self.channels.get(channel_id)
            if channel is None or channel.stopped or channel.resource_id != resource_id:
                raise errors.GoogleApiError(
                    404, "notFound", f"Channel '{channel_id}' not found for project"
                )
            del user  # any client of the project may stop a channel, as on Google
            channel.stopped = True

    def notify_events(self, calendar_id: str, event_type: str | None = None) -> None:
        """Tell every live channel on a calendar's events that something changed (an
        event of `event_type`: channels watching other types only are not told)."""
        with self.lock:
            for channel in self.channels.watching("events", calendar_id, self.clock.now()):
                if channel.reports(event_type):
                    self._queue(channel, "exists")

    def notify_calendar_list(self, email: str) -> None:
        self._notify("calendarList", email, "exists")

    def _notify(self, kind: ResourceKind, target: str, state: str) -> None:
        with self.lock:
            for channel in self.channels.watching(kind, target, self.clock.now()):
                self._queue(channel, state)

    def _queue(self, channel: Channel, state: str) -> None:
        message = replace(self.channels.message(channel, state), generation=self.generation)
        dropped_by = self.faults.drop_push(channel.id)
        if dropped_by is not None:
            self.record_delivery(message, outcome="dropped", detail=dropped_by)
            return
        self.outbox.put(message)

    def record_delivery(
        self,
        message: PushMessage,
        *,
        outcome: str,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Note what became of a push message (delivered, failed, dropped, expired).

        Messages queued before the last ``reset()`` are not recorded.
        """
        with self.lock:
            if message.generation != self.generation:
                return
            self.deliveries.append(
                {
                    "channel_id": message.channel_id,
                    "address": message.address,
                    "resource_state": message.state,
                    "message_number": message.number,
                    "outcome": outcome,
                    "status": status,
                    "detail": detail,
                    "at": timefmt.utc_millis(self.clock.now()),
                }
            )
