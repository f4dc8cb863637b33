"""Reads an iCalendar file with the icalendar package; prints its events as JSON."""
import json
import sys

import icalendar

with open(sys.argv[1], "rb") as f:
    calendar = icalendar.Calendar.from_ical(f.read())

events = []
for event in calendar.walk("VEVENT"):
    end = event.get("DTEND")
    events.append({
        "uid": str(event["UID"]),
        "start": event["DTSTART"].dt.isoformat(),
        "end": end.dt.isoformat() if end is not None else None,
        "summary": str(event["SUMMARY"]),
        "description": str(event.get("DESCRIPTION", "")),
    })
print(json.dumps({"name": str(calendar.get("NAME", "")), "events": events}))
