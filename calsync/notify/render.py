"""What notices say: email (plain text, HTML, iCalendar) and the JSON of pushes and webhooks.

Pure functions of a :class:`~calsync.notify.senders.Notice` and the time. Times are shown
in the recipient's zone (the event's own zone when the recipient has none but UTC).
The iCalendar part follows RFC 5546: ``METHOD:REQUEST`` for invitations and updates,
``METHOD:CANCEL`` for cancellations, ``METHOD:PUBLISH`` for reminders; timed events carry
their zone (with its ``VTIMEZONE``) so that a series expands correctly across DST.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any, Final

import icalendar

from calsync.domain.timezones import zone
from calsync.notify.payloads import time_from_document
from calsync.notify.senders import Notice

__all__ = [
    "Rendered",
    "email_message",
    "icalendar_document",
    "json_message",
    "one_line",
    "push_payload",
    "render",
]

PRODID: Final = "-//calsync//notices//EN"
_METHODS: Final = {"created": "REQUEST", "updated": "REQUEST", "cancelled": "CANCEL"}
_FIELD_LABELS: Final = {"title": "Title", "start": "Starts", "end": "Ends", "location": "Where"}


@dataclass(frozen=True, slots=True)
class Rendered:
    """A notice in words: a subject line and a plain body, for every channel."""

    type: str
    subject: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def display_zone(notice: Notice, event: dict[str, Any]) -> str:
    """Where times are shown: the recipient's zone, else the event's."""
    if notice.recipient.timezone and notice.recipient.timezone != "UTC":
        return notice.recipient.timezone
    return str(event.get("timezone") or "UTC")


def format_time(document: dict[str, Any], zone_name: str) -> str:
    """``Mon 30 Mar 2026, 09:00 CEST`` or ``Mon 30 Mar 2026`` for a whole day."""
    value = time_from_document(document)
    if value.day is not None:
        return value.day.strftime("%a %d %b %Y")
    assert value.instant is not None
    local = value.instant.astimezone(zone(zone_name))
    return local.strftime("%a %d %b %Y, %H:%M ") + (local.tzname() or zone_name)


def format_span(event: dict[str, Any], zone_name: str) -> str:
    """When an event takes place, in words."""
    start = format_time(event["start"], zone_name)
    if event.get("all_day"):
        first = time_from_document(event["start"]).day
        last = time_from_document(event["end"]).day
        if first is not None and last is not None and (last - first).days > 1:
            return f"{start} to {(last - timedelta(days=1)).strftime('%a %d %b %Y')} (all day)"
        return f"{start} (all day)"
    return f"{start} to {format_time(event['end'], zone_name)}"


def format_start(event: dict[str, Any], zone_name: str) -> str:
    """When an event starts, in words, for subject lines (kept short: long subjects fold)."""
    start = format_time(event["start"], zone_name)
    return f"{start} (all day)" if event.get("all_day") else start


def one_line(text: str) -> str:
    """`text` with each line break (CR, LF, and the others ``str.splitlines`` knows: VT,
    FF, NEL, U+2028, U+2029, ...) made a space: what a header value may hold. A title
    typed or pasted with a line break is still one subject line (decision JK1)."""
    return " ".join(text.splitlines())


def render(notice: Notice) -> Rendered:
    """The subject and body of ``notice``. The subject is one line whatever the title
    holds; the body shows the title as it is."""
    rendered = _render(notice)
    return replace(rendered, subject=one_line(rendered.subject))


def _render(notice: Notice) -> Rendered:
    payload = notice.payload
    event = payload["event"]
    where = display_zone(notice, event)
    title = event.get("title") or "(untitled event)"
    starts = format_start(event, where)
    if notice.kind == "reminder":
        when = format_span(event, where)
        lines = [f"Reminder: {title}", "", f"When: {when}"]
        if event.get("location"):
            lines.append(f"Where: {event['location']}")
        if event.get("description"):
            lines += ["", event["description"]]
        return Rendered("reminder", f"Reminder: {title}, {starts}", tuple(lines))
    change = payload["change"]
    before, after = payload.get("before"), payload.get("after")
    when = format_span(event, where)
    if change == "cancelled":
        lines = [f"Cancelled: {title}", "", f"Was: {when}"]
        if event.get("location"):
            lines.append(f"Where: {event['location']}")
        return Rendered("event.cancelled", f"Cancelled: {title}, {starts}", tuple(lines))
    if change == "created":
        lines = [f"Invitation: {title}", "", f"When: {when}"]
        if event.get("location"):
            lines.append(f"Where: {event['location']}")
        if event.get("organizer_email"):
            lines.append(f"Organizer: {event['organizer_email']}")
        return Rendered("event.created", f"Invitation: {title}, {starts}", tuple(lines))
    lines = [f"Updated: {title}", ""]
    assert before is not None
    assert after is not None
    for name in payload.get("changed", []):
        old, new = _field_text(before, name, where), _field_text(after, name, where)
        lines.append(f"{_FIELD_LABELS.get(name, name)}: {old} -> {new}")
    lines += ["", f"Now: {when}"]
    return Rendered("event.updated", f"Updated: {title}, {starts}", tuple(lines))


def _field_text(event: dict[str, Any], name: str, zone_name: str) -> str:
    if name in ("start", "end"):
        return format_time(event[name], zone_name)
    return str(event.get(name) or "(none)")


def json_message(notice: Notice, *, now: datetime) -> dict[str, Any]:
    """The JSON body of a webhook: the whole notice, machine-readable."""
    rendered = render(notice)
    payload = dict(notice.payload)
    body: dict[str, Any] = {
        "id": str(notice.id),
        "type": rendered.type,
        "created_at": now.astimezone(UTC).isoformat(),
        "user_id": str(notice.recipient.user_id),
        "subject": rendered.subject,
        "text": rendered.text,
        "event": payload["event"],
    }
    if notice.kind == "reminder":
        body |= {
            "occurrence_start": payload["occurrence_start"],
            "occurrence_end": payload["occurrence_end"],
            "lead_minutes": payload["lead_minutes"],
        }
    else:
        body |= {
            "changed": payload.get("changed", []),
            "before": payload.get("before"),
            "after": payload.get("after"),
            "source": payload.get("source"),
        }
    return body


#: The most JSON a push may carry: push services refuse an encrypted body over 4096
#: bytes (RFC 8030), and aes128gcm adds 103 (RFC 8291: salt, record size, key id, tag).
PUSH_PLAINTEXT_LIMIT: Final = 4096 - 103
#: How many characters of the text each try keeps, until the push fits.
_PUSH_TEXT_BUDGETS: Final = (1000, 500, 250, 120, 60, 0)


def push_message(notice: Notice, *, now: datetime, budget: int = 1000) -> dict[str, Any]:
    """The JSON of a Web Push message, its texts cut to `budget` characters (the subject
    to at most 200): push services cap payloads near 4 KB, see `push_payload`."""
    rendered = render(notice)
    event = notice.payload["event"]
    texts = {key: event.get(key) for key in ("uid", "title", "start", "end", "location")}
    for key in ("title", "location"):
        texts[key] = _cut(texts[key], budget)
    return {
        "id": str(notice.id),
        "type": rendered.type,
        "title": _cut(rendered.subject, min(budget, 200)),
        "body": _cut(rendered.text, budget),
        "event": texts,
        "sent_at": now.astimezone(UTC).isoformat(),
    }


def push_payload(notice: Notice, *, now: datetime) -> bytes:
    """The push's JSON as UTF-8, within `PUSH_PLAINTEXT_LIMIT` bytes: its texts are cut
    shorter until it fits (a text in a script that takes 3 bytes a character, or 6 as a
    JSON escape, would overflow a fixed cut in characters; decision JK3)."""
    for budget in _PUSH_TEXT_BUDGETS:
        message = push_message(notice, now=now, budget=budget)
        data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        if len(data) <= PUSH_PLAINTEXT_LIMIT:
            break
    return data


def _cut(text: object, budget: int) -> Any:
    """`text` (a string) cut to `budget` characters, an ellipsis marking the cut."""
    if not isinstance(text, str) or len(text) <= budget:
        return text
    return text[: max(budget - 1, 0)] + "\u2026" if budget else ""


def icalendar_document(notice: Notice, *, now: datetime) -> tuple[str, bytes]:
    """``(method, iCalendar bytes)`` describing the event of ``notice``."""
    payload = notice.payload
    method = "PUBLISH" if notice.kind == "reminder" else _METHODS[payload["change"]]
    event = payload["event"]
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    vevent = icalendar.Event()
    vevent.add("uid", f"{event['uid']}@calsync")
    vevent.add("dtstamp", now.astimezone(UTC))
    vevent.add("dtstart", _ical_time(event["start"]))
    vevent.add("dtend", _ical_time(event["end"]))
    vevent.add("summary", event.get("title") or "")
    if event.get("location"):
        vevent.add("location", event["location"])
    if event.get("description"):
        vevent.add("description", event["description"])
    vevent.add("sequence", int(event.get("sequence") or 0))
    cancelled = method == "CANCEL"
    vevent.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if payload.get("recurrence_id"):
        vevent.add("recurrence-id", _ical_time(payload["recurrence_id"]))
    elif notice.kind != "reminder":
        for line in event.get("recurrence") or ():
            _add_recurrence_line(vevent, line)
    if event.get("organizer_email"):
        vevent.add("organizer", icalendar.vCalAddress(f"mailto:{event['organizer_email']}"))
    for email in event.get("attendees") or ():
        attendee = icalendar.vCalAddress(f"mailto:{email}")
        attendee.params["role"] = "REQ-PARTICIPANT"
        vevent.add("attendee", attendee)
    calendar.add_component(vevent)
    calendar.add_missing_timezones()
    return method, calendar.to_ical()


def _ical_time(document: dict[str, Any]) -> date | datetime:
    value = time_from_document(document)
    if value.day is not None:
        return value.day
    return value.local()


def _add_recurrence_line(vevent: icalendar.Event, line: str) -> None:
    try:
        parsed = icalendar.Event.from_ical(f"BEGIN:VEVENT\r\n{line}\r\nEND:VEVENT\r\n")
    except ValueError:
        return  # a line calendar clients could not read either; the times still stand
    for name, value in parsed.items():
        vevent.add(name, value)


def email_message(notice: Notice, *, sender: str, now: datetime) -> EmailMessage:
    """The email of ``notice``: plain text and HTML alternatives plus the event as a
    ``text/calendar`` attachment. The Message-ID is derived from the delivery id, so a
    retried send is recognisable as the same message."""
    rendered = render(notice)
    method, ics = icalendar_document(notice, now=now)
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    name = one_line(notice.recipient.display_name or "")
    message["To"] = formataddr((name, notice.recipient.email))
    message["Date"] = format_datetime(now.astimezone(UTC))
    domain = sender.rpartition("@")[2].strip("> ") or "calsync"
    message["Message-ID"] = f"<{notice.id}@{domain}>"
    message["X-Calsync-Notice"] = f"{notice.kind}; id={notice.id}"
    message.set_content(rendered.text)
    message.add_alternative(_html(rendered), subtype="html")
    message.add_attachment(
        ics,
        maintype="text",
        subtype="calendar",
        filename="invite.ics" if notice.kind == "change" else "event.ics",
        params={"method": method, "charset": "utf-8"},
    )
    return message


def _html(rendered: Rendered) -> str:
    heading, *rest = rendered.lines
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in rest if line)
    return (
        "<!doctype html><html><body>"
        f"<h2>{html.escape(heading)}</h2>{paragraphs}"
        "<p style='color:#666'>Sent by calsync.</p></body></html>"
    )
