"""Rebuild series.json from local clones of the corpus' source repositories.

    python tests/data/rfc5545_corpus/build.py OWNER/NAME=COMMIT=LICENCE=PATH ...

Each PATH is a checkout of OWNER/NAME at COMMIT. Every VEVENT with an RRULE or RDATE and
no RECURRENCE-ID in its .ics files becomes one series: its start, end and zone (the IANA
name of its TZID, the calendar's X-WR-TIMEZONE for floating times, UTC for UTC times)
and its RRULE/EXRULE/RDATE/EXDATE lines as Google holds them (TZIDs as IANA names).
Events whose zone has no IANA name, or whose lines calsync's line format cannot carry
(RDATE periods), are left out and counted. Not run by the tests: series.json is
committed, with each series' source and licence.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

sys.path.insert(0, str(Path(__file__).parent))
from hand import records

HERE = Path(__file__).parent
WINDOWS = {
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "GMT Standard Time": "Europe/London",
    "Eastern Standard Time": "America/New_York",
    "Pacific Standard Time": "America/Los_Angeles",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "E. Australia Standard Time": "Australia/Brisbane",
    "Tokyo Standard Time": "Asia/Tokyo",
    "China Standard Time": "Asia/Shanghai",
    "India Standard Time": "Asia/Kolkata",
    "FLE Standard Time": "Europe/Helsinki",
    "Pacific SA Standard Time": "America/Santiago",
}


def iana(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip('"')
    candidates = [name, WINDOWS.get(name, "")]
    parts = name.strip("/").split("/")
    candidates += ["/".join(parts[-2:]), "/".join(parts[-3:])]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return candidate
    return None


def unfolded(component: icalendar.cal.Component) -> list[str]:
    text = component.to_ical().decode()
    return re.sub(r"\r?\n[ \t]", "", text).replace("\r", "").split("\n")


def series_of(
    event: icalendar.cal.Component, default_zone: str | None, skipped: Counter[str]
) -> dict | None:
    start_prop = event.get("DTSTART")
    if start_prop is None:
        skipped["no DTSTART"] += 1
        return None
    start = start_prop.dt
    lines: list[str] = []
    own: list[str] = []
    for line in unfolded(event):
        head = line.split(":", 1)[0].split(";")[0].upper()
        if head in ("DTSTART",):
            own.append(line)
        if head not in ("RRULE", "EXRULE", "RDATE", "EXDATE"):
            continue
        if "VALUE=PERIOD" in line.upper():
            skipped["RDATE period"] += 1
            return None
        match = re.search(r";TZID=(\"[^\"]*\"|[^;:]*)", line)
        if match:
            zone = iana(match.group(1))
            if zone is None:
                skipped["zone without IANA name"] += 1
                return None
            line = line[: match.start()] + f";TZID={zone}" + line[match.end() :]
        lines.append(line)
    if not any(line.startswith(("RRULE", "RDATE")) for line in lines):
        return None
    record: dict = {"uid": str(event.get("UID", "")), "recurrence": lines}
    if isinstance(start, datetime):
        tzid = start_prop.params.get("TZID")
        if tzid:
            zone = iana(tzid)
        elif start.tzinfo is not None:
            zone = "UTC"
        else:
            zone = iana(default_zone) or "UTC"
        if zone is None:
            skipped["zone without IANA name"] += 1
            return None
        naive = (
            start.replace(tzinfo=None)
            if tzid or start.tzinfo is None
            else start.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
        )
        end = event.get("DTEND")
        if end is not None and isinstance(end.dt, datetime):
            end_dt = end.dt
            if end_dt.tzinfo is None:
                duration = (
                    end_dt - start.replace(tzinfo=None) if start.tzinfo is None else timedelta(0)
                )
            else:
                aware_start = naive.replace(tzinfo=ZoneInfo(zone))
                duration = end_dt - aware_start
        elif event.get("DURATION") is not None:
            duration = event["DURATION"].dt
        else:
            duration = timedelta(0)
        if duration < timedelta(0):
            skipped["end before start"] += 1
            return None
        record |= {
            "start": naive.isoformat(),
            "zone": zone,
            "minutes": duration.total_seconds() / 60,
        }
    else:
        end = event.get("DTEND")
        if end is not None and isinstance(end.dt, date) and not isinstance(end.dt, datetime):
            days = (end.dt - start).days
        elif event.get("DURATION") is not None:
            days = event["DURATION"].dt.days
        else:
            days = 1
        if days < 1:
            skipped["end before start"] += 1
            return None
        record |= {"start": start.isoformat(), "zone": iana(default_zone) or "UTC", "days": days}
    return record


def main(sources: list[str]) -> None:
    corpus: list[dict] = []
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    for source in sources:
        repo, commit, licence, path = source.split("=", 3)
        for file in sorted(Path(path).rglob("*.ics")):
            try:
                calendar = icalendar.Calendar.from_ical(file.read_bytes())
            except Exception:
                skipped["file icalendar cannot read"] += 1
                continue
            default_zone = str(calendar.get("X-WR-TIMEZONE", "")) or None
            for event in calendar.walk("VEVENT"):
                if event.get("RECURRENCE-ID") is not None:
                    continue
                try:
                    record = series_of(event, default_zone, skipped)
                except Exception as err:
                    skipped[f"unreadable: {type(err).__name__}"] += 1
                    continue
                if record is None:
                    continue
                key = json.dumps({k: v for k, v in record.items() if k != "uid"}, sort_keys=True)
                if key in seen:
                    skipped["duplicate"] += 1
                    continue
                seen.add(key)
                relative = file.relative_to(path).as_posix()
                corpus.append(
                    {"source": f"{repo}@{commit[:12]}:{relative}", "licence": licence, **record}
                )
    corpus += records()
    out = HERE / "series.json"
    out.write_text(json.dumps(corpus, indent=1, sort_keys=True) + "\n")
    print(len(corpus), "series;", dict(skipped))


if __name__ == "__main__":
    main(sys.argv[1:])
