"""Hypothesis strategies for domain values, shared by the tests of every layer."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import strategies as st

from calsync.domain.event_props import (
    EVENT_COLOR_IDS,
    Conference,
    ConferenceStatus,
    Transparency,
    Visibility,
)
from calsync.domain.models import (
    Attendee,
    Event,
    EventStatus,
    EventTime,
    Reminder,
    ReminderMethod,
    Reminders,
    ResponseStatus,
)

ZONES = st.sampled_from(
    ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
)
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)


@st.composite
def events(draw: st.DrawFn) -> Event:
    if draw(st.booleans()):
        day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31)))
        start = EventTime.on(day)
        end = EventTime.on(day + timedelta(days=draw(st.integers(1, 10))))
        timezone: str | None = draw(ZONES)
    else:
        zone = draw(ZONES)
        naive = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31)))
        start = EventTime.at(naive.replace(microsecond=0), zone)
        end = EventTime.at(
            start.local() + timedelta(minutes=draw(st.integers(1, 5000))), draw(ZONES)
        )
        timezone = None
    emails = draw(
        st.lists(
            st.from_regex(r"[a-z0-9]{1,8}@[a-z]{1,8}\.(com|org)", fullmatch=True),
            unique=True,
            max_size=4,
        )
    )
    attendees = tuple(
        Attendee(
            email=email,
            display_name=draw(st.none() | TEXT.filter(bool)),
            response_status=draw(st.sampled_from(list(ResponseStatus))),
            optional=draw(st.booleans()),
            organizer=draw(st.booleans()),
        )
        for email in emails
    )
    if draw(st.booleans()):
        reminders = Reminders()
    else:
        pairs = draw(
            st.sets(
                st.tuples(st.integers(0, 40320), st.sampled_from(list(ReminderMethod))), max_size=5
            )
        )
        reminders = Reminders(
            use_default=False, overrides=tuple(Reminder(m, method) for m, method in pairs)
        )
    recurrence = draw(
        st.sampled_from(
            [
                (),
                ("RRULE:FREQ=DAILY;COUNT=5",),
                ("RRULE:FREQ=WEEKLY;BYDAY=MO,TU", "EXDATE:20300101T000000Z"),
                ("RDATE;VALUE=DATE:20300101,20300102",),
            ]
        )
    )
    return Event(
        title=draw(TEXT),
        description=draw(TEXT),
        location=draw(TEXT),
        start=start,
        end=end,
        timezone=timezone,
        category=draw(st.none() | TEXT.filter(bool)),
        recurrence=recurrence,
        attendees=attendees,
        reminders=reminders,
        metadata=draw(
            st.dictionaries(
                st.from_regex(r"[A-Za-z0-9_.-]{1,31}", fullmatch=True), TEXT, max_size=5
            )
        ),
        status=draw(st.sampled_from(list(EventStatus))),
        transparency=draw(st.sampled_from(list(Transparency))),
        visibility=draw(st.sampled_from(list(Visibility))),
        color_id=draw(st.none() | st.sampled_from(sorted(EVENT_COLOR_IDS))),
        conference=draw(st.none() | conferences()),
    )


@st.composite
def conferences(draw: st.DrawFn) -> Conference:
    """A Meet request calsync made, or a conference as Google shows one."""
    if draw(st.booleans()):
        return Conference.meet_request(draw(st.from_regex(r"[a-v0-9]{5,26}", fullmatch=True)))
    return Conference(
        status=draw(st.sampled_from(list(ConferenceStatus))),
        solution=draw(st.none() | st.sampled_from(["hangoutsMeet", "addOn"])),
        uri=draw(st.none() | st.just("https://meet.google.com/abc-defg-hij")),
        request_id=draw(st.none() | TEXT.filter(bool)),
        conference_id=draw(st.none() | st.just("abc-defg-hij")),
    )
