"""The emulator's durable world as a JSON document, and back.

``encode`` captures what Google itself would still have after a restart of its front
ends: accounts (users, grants, access and refresh tokens, authorization codes,
consents), calendars with every event version the sync protocol can still reach
(tombstones, change numbers, sync epochs), watch channels, the run-time config and the
clock's offset. Sync and page tokens need nothing more: they encode change numbers,
which survive. Left out on purpose, as test instruments of one run: injected faults,
the request log, push-delivery records and rate-limit windows.

``restore`` fills an empty :class:`EmulatorState` from such a document; it raises
:class:`SnapshotError` for a document it cannot read, never half-applies one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from calsync.emulator.accounts import AccessToken, AccountStore, AuthCode, Grant, User
from calsync.emulator.calendars import CalendarRecord
from calsync.emulator.channels import Channel, ChannelRegistry
from calsync.emulator.config import EmulatorConfig
from calsync.emulator.event_log import EventLog, StoredEvent
from calsync.emulator.event_model import EventTime, Timing
from calsync.emulator.state import EmulatorState

FORMAT = "calsync-emulator-state"
VERSION = 1

JSON = dict[str, Any]


class SnapshotError(Exception):
    """The document is not an emulator state this version can read."""


class EventTexts:
    """The JSON text of each stored event version, made once: a version never changes (a
    write stores a new one), so a save encodes only the versions written since the last
    one, and the rest of a large world costs a lookup each."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[StoredEvent, str]] = {}
        self._used: dict[int, tuple[StoredEvent, str]] = {}

    def of(self, event: StoredEvent) -> str:
        found = self._texts.get(id(event))
        if found is None or found[0] is not event:  # ids are reused once objects die
            found = (event, json.dumps(_event(event), separators=(",", ":")))
        self._used[id(event)] = found
        return found[1]

    def forget_unused(self) -> None:
        """Keep only the texts used since the last call (versions still stored)."""
        self._texts, self._used = self._used, {}


def encode(state: EmulatorState, texts: EventTexts) -> bytes:
    """The durable part of ``state`` as a JSON document (ASCII, with escapes: a lone
    surrogate, which Google keeps in texts, has no UTF-8 form). Takes ``state.lock`` to
    copy what may change; the copies are encoded after it is released."""
    with state.lock:
        head = _head(state)
        calendars = [
            (_calendar(calendar), [texts.of(event) for event in calendar.events.ordered()])
            for calendar in state.calendars.values()
        ]
    texts.forget_unused()
    parts = [
        _compact(calendar)[:-1] + ',"events":[' + ",".join(events) + "]}"
        for calendar, events in calendars
    ]
    return (_compact(head)[:-1] + ',"calendars":[' + ",".join(parts) + "]}").encode()


def _compact(value: JSON) -> str:
    return json.dumps(value, separators=(",", ":"))


def _head(state: EmulatorState) -> JSON:
    accounts = state.accounts
    return {
        "format": FORMAT,
        "version": VERSION,
        "clock_offset_seconds": state.clock.offset_seconds,
        "config": state.config.to_json(),
        "users": [_user(user) for user in accounts.users.values()],
        "subjects": sorted(accounts.subjects),
        "grants": [_grant(grant) for grant in accounts.grants.values()],
        "access_tokens": [_access(token) for token in accounts.access_tokens.values()],
        "codes": [_code(code) for code in accounts.codes.values()],
        "offline_consents": sorted(list(pair) for pair in accounts.offline_consents),
        "consents": {email: sorted(ticked) for email, ticked in accounts.consents.items()},
        "channels": [_channel(channel) for channel in state.channels.channels.values()],
    }


def restore(state: EmulatorState, document: Any) -> None:
    """Replace the durable part of a fresh ``state`` with ``document``.

    Raises:
        SnapshotError: not a version-1 emulator state, or malformed; ``state`` unchanged.
    """
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise SnapshotError("not a calsync emulator state")
    if document.get("version") != VERSION:
        raise SnapshotError(f"emulator state version {document.get('version')!r} is unknown")
    try:
        accounts, calendars, channels, config = _read(document)
        offset = float(document.get("clock_offset_seconds", 0))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SnapshotError(f"malformed emulator state: {err!r}") from None
    with state.lock:
        state.accounts = accounts
        state.calendars = calendars
        state.channels = channels
        state.config = config
        state.clock.reset()
        state.clock.advance(max(offset, 0.0))


def _read(
    document: Mapping[str, Any],
) -> tuple[AccountStore, dict[str, CalendarRecord], ChannelRegistry, EmulatorConfig]:
    accounts = AccountStore()
    for raw in document["users"]:
        user = User(**raw)
        accounts.users[user.email] = user
    accounts.subjects = set(document["subjects"])
    for raw in document["grants"]:
        grant = Grant(**(raw | {"scopes": tuple(raw["scopes"])}))
        accounts.grants[grant.id] = grant
        if grant.refresh_token is not None:
            accounts.refresh_tokens[grant.refresh_token] = grant
    for raw in document["access_tokens"]:
        token = AccessToken(
            token=raw["token"],
            grant=accounts.grants[raw["grant"]],
            expires_at=_moment(raw["expires_at"]),
            revoked=bool(raw["revoked"]),
        )
        accounts.access_tokens[token.token] = token
    for raw in document["codes"]:
        code = AuthCode(
            **(raw | {"scopes": tuple(raw["scopes"]), "expires_at": _moment(raw["expires_at"])})
        )
        accounts.codes[code.code] = code
    accounts.offline_consents = {(email, client) for email, client in document["offline_consents"]}
    accounts.consents = {email: frozenset(ticked) for email, ticked in document["consents"].items()}
    calendars = {raw["id"]: _read_calendar(raw) for raw in document["calendars"]}
    channels = ChannelRegistry()
    for raw in document["channels"]:
        channels.add(
            Channel(
                **(
                    raw
                    | {
                        "expiration": _moment(raw["expiration"]),
                        "created": _moment(raw["created"]),
                    }
                )
            )
        )
    config = EmulatorConfig()
    config.update(dict(document["config"]))
    return accounts, calendars, channels, config


# accounts --------------------------------------------------------------------------------


def _user(user: User) -> JSON:
    return asdict(user)


def _grant(grant: Grant) -> JSON:
    return asdict(grant)


def _access(token: AccessToken) -> JSON:
    return {
        "token": token.token,
        "grant": token.grant.id,
        "expires_at": token.expires_at.isoformat(),
        "revoked": token.revoked,
    }


def _code(code: AuthCode) -> JSON:
    return asdict(code) | {"expires_at": code.expires_at.isoformat()}


# calendars and events ------------------------------------------------------------------


def _calendar(calendar: CalendarRecord) -> JSON:
    log = calendar.events
    return {
        "id": calendar.id,
        "summary": calendar.summary,
        "owner": calendar.owner,
        "time_zone": calendar.time_zone,
        "description": calendar.description,
        "acl": dict(calendar.acl),
        "etag": calendar.etag,
        "sync_epoch": calendar.sync_epoch,
        "deleted": calendar.deleted,
        "seq": log.seq,
        "last_updated": log.last_updated.isoformat() if log.last_updated else None,
    }


def _read_calendar(raw: Mapping[str, Any]) -> CalendarRecord:
    events = [_read_event(item) for item in raw["events"]]
    last_updated = raw["last_updated"]
    return CalendarRecord(
        id=raw["id"],
        summary=raw["summary"],
        owner=raw["owner"],
        time_zone=raw["time_zone"],
        description=raw["description"],
        acl=dict(raw["acl"]),
        events=EventLog.restored(
            events,
            seq=int(raw["seq"]),
            last_updated=_moment(last_updated) if last_updated else None,
        ),
        etag=raw["etag"],
        sync_epoch=int(raw["sync_epoch"]),
        deleted=bool(raw["deleted"]),
    )


def _event(event: StoredEvent) -> JSON:
    return {
        "resource": event.resource,
        "start": _time(event.timing.start),
        "end": _time(event.timing.end),
        "updated": event.updated.isoformat(),
        "seq": event.seq,
        "master_id": event.master_id,
        "suffix": event.suffix,
    }


def _read_event(raw: Mapping[str, Any]) -> StoredEvent:
    resource = raw["resource"]
    if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
        raise ValueError("an event without an id")
    return StoredEvent(
        resource=resource,
        timing=Timing(_read_time(raw["start"]), _read_time(raw["end"])),
        updated=_moment(raw["updated"]),
        seq=int(raw["seq"]),
        master_id=raw["master_id"],
        suffix=raw["suffix"],
    )


def _time(value: EventTime) -> JSON:
    """The wall time, its fold and its zone: exact even for a time a DST change skips or
    repeats, which an offset alone would move."""
    local = value.local
    return {
        "all_day": value.all_day,
        "wall": local.replace(tzinfo=None).isoformat(),
        "fold": local.fold,
        "zone": _zone_name(value.zone),
        "zone_name": value.zone_name,
    }


def _read_time(raw: Mapping[str, Any]) -> EventTime:
    zone = _zone(raw["zone"])
    wall = datetime.fromisoformat(raw["wall"]).replace(fold=int(raw["fold"]))
    local = wall if raw["all_day"] else wall.replace(tzinfo=zone)
    return EventTime(bool(raw["all_day"]), local, zone, raw["zone_name"])


def _zone_name(zone: tzinfo) -> str:
    if zone is UTC:
        return "UTC"
    if isinstance(zone, ZoneInfo):
        return zone.key
    raise ValueError(f"cannot store the time zone {zone!r}")


def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"a naive time: {text}")
    return moment


# channels -------------------------------------------------------------------------------


def _channel(channel: Channel) -> JSON:
    return asdict(channel) | {
        "expiration": channel.expiration.isoformat(),
        "created": channel.created.isoformat(),
    }
