"""gcsa's objects as the results agents see (RFC 3339 out, zones kept, all-day flagged)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from airlock_gcal.models import Attendee, Busy, Calendar, CalendarBusy, Event

__all__ = ["as_attendee", "as_calendar", "as_event", "busy_of", "rfc3339"]


def rfc3339(moment: date | datetime) -> str:
    """A time with its own offset (``Z`` for UTC), or a plain date."""
    if isinstance(moment, datetime):
        text = moment.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return moment.isoformat()


def as_attendee(person: Any) -> Attendee:
    return Attendee(
        email=getattr(person, "email", None),
        name=getattr(person, "display_name", None) or "",
        response=getattr(person, "response_status", None),
        organizer=bool(getattr(person, "is_organizer", False)),
        self=bool(getattr(person, "is_self", False)),
        optional=bool(getattr(person, "optional", False)),
    )


def as_event(event: Any, calendar: str) -> Event:
    """A gcsa ``Event`` as Airlock's; conference passcodes and PINs are left out."""
    other: dict[str, Any] = event.other or {}
    return Event(
        id=str(event.event_id),
        calendar=calendar,
        summary=event.summary or "",
        description=event.description or "",
        location=event.location or "",
        start=rfc3339(event.start),
        end=rfc3339(event.end),
        all_day=not isinstance(event.start, datetime),
        time_zone=event.timezone,
        status=other.get("status"),
        organizer=as_attendee(event.organizer) if event.organizer else None,
        attendees=[as_attendee(a) for a in event.attendees or []],
        recurring_event_id=event.recurring_event_id,
        link=other.get("htmlLink"),
        meeting_link=other.get("hangoutLink"),
    )


def as_calendar(entry: Any) -> Calendar:
    return Calendar(
        id=str(entry.calendar_id),
        summary=getattr(entry, "summary_override", None) or entry.summary or "",
        description=entry.description or "",
        time_zone=entry.timezone,
        access_role=getattr(entry, "access_role", None),
        primary=bool(getattr(entry, "primary", False)),
    )


def busy_of(free_busy: Any, calendar: str) -> CalendarBusy:
    ranges = free_busy.calendars.get(calendar, [])
    errors = free_busy.calendars_errors.get(calendar, [])
    return CalendarBusy(
        id=calendar,
        busy=[Busy(start=rfc3339(r.start), end=rfc3339(r.end)) for r in ranges],
        errors=[str(e.get("reason", e)) if isinstance(e, dict) else str(e) for e in errors],
    )
