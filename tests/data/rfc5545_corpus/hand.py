"""The hand-written part of the corpus: RFC 5545 3.8.5.3's examples (with their DTSTART,
America/New_York) and edge cases around DST, month ends, WKST and all-day series.
`build.py` adds them to series.json."""

from __future__ import annotations

NY = "America/New_York"
RFC = "RFC 5545 section 3.8.5.3 (IETF Trust, BSD-style licence for code components)"
EDGE = "calsync edge cases (this repository, MIT)"

# (start, zone, minutes or None for all-day with `days`, lines)
RFC_EXAMPLES: list[tuple[str, str, list[str]]] = [
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=DAILY;COUNT=10"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=DAILY;UNTIL=19971224T000000Z"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=DAILY;INTERVAL=2"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=DAILY;INTERVAL=10;COUNT=5"]),
    (
        "1998-01-01T09:00:00",
        NY,
        ["RRULE:FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA"],
    ),
    ("1998-01-01T09:00:00", NY, ["RRULE:FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=WEEKLY;COUNT=10"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=WEEKLY;UNTIL=19971224T000000Z"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=WEEKLY;INTERVAL=2;WKST=SU"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH"]),
    (
        "1997-09-01T09:00:00",
        NY,
        ["RRULE:FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR"],
    ),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH"]),
    ("1997-09-05T09:00:00", NY, ["RRULE:FREQ=MONTHLY;COUNT=10;BYDAY=1FR"]),
    ("1997-09-05T09:00:00", NY, ["RRULE:FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR"]),
    ("1997-09-07T09:00:00", NY, ["RRULE:FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU"]),
    ("1997-09-22T09:00:00", NY, ["RRULE:FREQ=MONTHLY;COUNT=6;BYDAY=-2MO"]),
    ("1997-09-28T09:00:00", NY, ["RRULE:FREQ=MONTHLY;BYMONTHDAY=-3"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15"]),
    ("1997-09-30T09:00:00", NY, ["RRULE:FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1"]),
    (
        "1997-09-10T09:00:00",
        NY,
        ["RRULE:FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15"],
    ),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=TU"]),
    ("1997-06-10T09:00:00", NY, ["RRULE:FREQ=YEARLY;COUNT=10;BYMONTH=6,7"]),
    ("1997-03-10T09:00:00", NY, ["RRULE:FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3"]),
    ("1997-01-01T09:00:00", NY, ["RRULE:FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200"]),
    ("1997-05-19T09:00:00", NY, ["RRULE:FREQ=YEARLY;BYDAY=20MO"]),
    ("1997-05-12T09:00:00", NY, ["RRULE:FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO"]),
    ("1997-03-13T09:00:00", NY, ["RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=TH"]),
    ("1997-06-05T09:00:00", NY, ["RRULE:FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8"]),
    (
        "1997-09-02T09:00:00",
        NY,
        [
            "EXDATE;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        ],
    ),
    ("1997-09-13T09:00:00", NY, ["RRULE:FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13"]),
    (
        "1996-11-05T09:00:00",
        NY,
        ["RRULE:FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8"],
    ),
    ("1997-09-04T09:00:00", NY, ["RRULE:FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3"]),
    ("1997-09-29T09:00:00", NY, ["RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=MINUTELY;INTERVAL=15;COUNT=6"]),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=MINUTELY;INTERVAL=90;COUNT=4"]),
    (
        "1997-09-02T09:00:00",
        NY,
        ["RRULE:FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40"],
    ),
    ("1997-09-02T09:00:00", NY, ["RRULE:FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16"]),
    ("1997-08-05T09:00:00", NY, ["RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO"]),
    ("1997-08-05T09:00:00", NY, ["RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU"]),
    ("2007-01-15T09:00:00", NY, ["RRULE:FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5"]),
    # 3.8.5.2's RDATE examples
    (
        "1997-07-14T08:30:00",
        NY,
        ["RRULE:FREQ=YEARLY;COUNT=3", "RDATE;TZID=America/New_York:19970714T083000"],
    ),
    ("1997-07-14T12:30:00", "UTC", ["RDATE:19970714T123000Z,19970715T123000Z"]),
]

# (start, zone, minutes, lines) timed; (date, zone, None, lines) all-day (one day)
EDGES: list[tuple[str, str, int | None, list[str]]] = [
    ("2024-03-08T02:30:00", NY, 60, ["RRULE:FREQ=DAILY;COUNT=5"]),
    ("2024-11-01T01:30:00", NY, 30, ["RRULE:FREQ=DAILY;COUNT=5"]),
    (
        "2024-11-01T01:30:00",
        NY,
        30,
        ["RRULE:FREQ=DAILY;COUNT=5", "EXDATE;TZID=America/New_York:20241103T013000"],
    ),
    ("2024-03-29T02:30:00", "Europe/Berlin", 60, ["RRULE:FREQ=DAILY;COUNT=5"]),
    ("2024-10-25T02:30:00", "Europe/Berlin", 90, ["RRULE:FREQ=DAILY;COUNT=5"]),
    ("2024-10-04T02:30:00", "Australia/Sydney", 60, ["RRULE:FREQ=DAILY;COUNT=5"]),
    ("2025-04-03T02:30:00", "Australia/Sydney", 60, ["RRULE:FREQ=DAILY;COUNT=5"]),
    ("2024-09-06T00:00:00", "America/Santiago", 60, ["RRULE:FREQ=DAILY;COUNT=5"]),
    ("2025-04-04T23:30:00", "America/Santiago", 60, ["RRULE:FREQ=DAILY;COUNT=5"]),
    ("2024-10-04T02:00:00", "Australia/Lord_Howe", 30, ["RRULE:FREQ=DAILY;COUNT=4"]),
    ("2024-03-08T02:30:00", NY, 60, ["RRULE:FREQ=WEEKLY;BYDAY=SU,MO;UNTIL=20240401T063000Z"]),
    ("2024-01-31T10:00:00", "Europe/Berlin", 60, ["RRULE:FREQ=MONTHLY;COUNT=6"]),
    ("2024-01-31T10:00:00", "Europe/Berlin", 60, ["RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=6"]),
    ("2024-02-29T10:00:00", "Europe/Berlin", 60, ["RRULE:FREQ=YEARLY;COUNT=3"]),
    (
        "2024-02-29T10:00:00",
        "Europe/Berlin",
        60,
        ["RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1;COUNT=4"],
    ),
    (
        "2024-12-30T09:00:00",
        "Europe/Berlin",
        30,
        ["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;WKST=SU;COUNT=8"],
    ),
    (
        "2024-01-05T09:00:00",
        "Europe/Berlin",
        30,
        ["RRULE:FREQ=WEEKLY;COUNT=3", "RDATE;TZID=Europe/Berlin:20240110T090000,20240401T090000"],
    ),
    ("2024-01-05T09:00:00", "Europe/Berlin", 30, ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3"]),
    ("2024-06-03T09:00:00", NY, 30, ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20240612T130000Z"]),
    ("2024-06-03T09:00:00", NY, 30, ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20240612T125959Z"]),
    ("2024-06-03T09:00:00", NY, 30, ["RRULE:FREQ=DAILY;COUNT=1"]),
    ("2024-06-03T09:00:00", NY, 0, ["RRULE:FREQ=DAILY;COUNT=3"]),
    (
        "2024-06-03T09:00:00",
        NY,
        30,
        ["RRULE:FREQ=DAILY;COUNT=5", "EXDATE:20240604T130000Z,20240606T130000Z"],
    ),
    ("2024-06-03T09:00:00", NY, 30, ["RRULE:FREQ=DAILY;COUNT=5", "EXDATE;VALUE=DATE:20240605"]),
    ("2024-06-03T23:30:00", "Australia/Sydney", 120, ["RRULE:FREQ=DAILY;COUNT=5"]),
    ("2024-06-03T09:00:00", "Asia/Kolkata", 45, ["RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=6"]),
    ("2024-06-03T09:00:00", "Pacific/Chatham", 45, ["RRULE:FREQ=WEEKLY;INTERVAL=3;COUNT=20"]),
    (
        "2024-01-01",
        "Europe/Berlin",
        None,
        ["RRULE:FREQ=WEEKLY;BYDAY=MO,TH;COUNT=10", "EXDATE;VALUE=DATE:20240104"],
    ),
    ("2024-01-01", NY, None, ["RRULE:FREQ=YEARLY;UNTIL=20300101"]),
    ("2024-02-29", "Australia/Sydney", None, ["RRULE:FREQ=YEARLY;COUNT=3"]),
    ("2024-03-31", "Europe/Berlin", None, ["RRULE:FREQ=DAILY;COUNT=3"]),
    ("2024-01-31", NY, None, ["RRULE:FREQ=MONTHLY;UNTIL=20241231"]),
    ("2024-01-01", "America/Santiago", None, ["RDATE;VALUE=DATE:20240105,20240301"]),
]


def records() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for start, zone, lines in RFC_EXAMPLES:
        out.append(
            {
                "source": RFC,
                "licence": "BSD-3-Clause (IETF Trust)",
                "uid": "",
                "start": start,
                "zone": zone,
                "minutes": 60.0,
                "recurrence": lines,
            }
        )
    for start, zone, minutes, lines in EDGES:
        record: dict[str, object] = {
            "source": EDGE,
            "licence": "MIT",
            "uid": "",
            "start": start,
            "zone": zone,
            "recurrence": lines,
        }
        record |= {"days": 1} if minutes is None else {"minutes": float(minutes)}
        out.append(record)
    return out
