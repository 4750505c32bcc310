"""The operations' parameters and results, as agents see them.

Times are RFC 3339: an instant carries its offset (``2026-12-02T09:30:00+01:00``); an
all-day event has dates (``2026-12-02``, end exclusive, as Google stores them) and says
``all_day: true``. An event's own time zone (``Europe/Berlin``) is kept beside its times.
Everything an event's organiser wrote (summary, description, location, names) is text
from a stranger: the code-redaction policy masks codes in it before an agent sees it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self
from zoneinfo import available_timezones

from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from airlock.plugin import Params, UntrustedText
from airlock_gcal.settings import CalendarId

__all__ = [
    "Attendee",
    "Busy",
    "Calendar",
    "CalendarBusy",
    "CalendarList",
    "CreateEventParams",
    "Event",
    "EventList",
    "FreeBusy",
    "FreeBusyParams",
    "GetEventParams",
    "ListCalendarsParams",
    "ListEventsParams",
    "RespondParams",
    "TodayParams",
    "UpcomingParams",
]

MAX_EVENTS = 2500
# Google's ids: base32hex for events made here, plus "_20261202T090000Z" for an
# instance of a recurring event; imported events may use other letters.
EventId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,1024}$", description="An event id.")]
# ASCII only (RFC 5322's atext and dots): the person approves invitations to the
# addresses the prompt shows, and a look-alike letter or an invisible character would
# make an address read as another one.
Email = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$")
]


def _zone(value: str | None) -> str | None:
    if value is not None and value not in _zones():
        raise ValueError(f"unknown time zone {value[:40]!r} (use an IANA name: Europe/Berlin)")
    return value


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


class _Window(Params):
    start: AwareDatetime = Field(description="RFC 3339 with an offset.")
    end: AwareDatetime = Field(description="RFC 3339 with an offset; after start.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ListCalendarsParams(Params):
    pass


class ListEventsParams(_Window):
    calendar: CalendarId = "primary"
    query: str | None = Field(None, max_length=200, description="Free-text search.")
    limit: int = Field(50, ge=1, le=MAX_EVENTS)


class TodayParams(Params):
    calendar: CalendarId = "primary"
    time_zone: str | None = Field(None, description="IANA zone of 'today'; the machine's if unset.")
    limit: int = Field(100, ge=1, le=MAX_EVENTS)

    _check_zone = field_validator("time_zone")(_zone)


class UpcomingParams(Params):
    hours: float = Field(24, gt=0, le=24 * 62)
    calendar: CalendarId = "primary"
    limit: int = Field(100, ge=1, le=MAX_EVENTS)


class GetEventParams(Params):
    id: EventId
    calendar: CalendarId = "primary"


class FreeBusyParams(_Window):
    calendars: list[CalendarId] = Field(default_factory=lambda: ["primary"], min_length=1)

    @field_validator("calendars")
    @classmethod
    def _few(cls, value: list[str]) -> list[str]:
        if len(value) > 50:  # Google's calendarExpansionMax
            raise ValueError("at most 50 calendars")
        return value


class CreateEventParams(Params):
    calendar: CalendarId = "primary"
    summary: str = Field(min_length=1, max_length=1024)
    start: AwareDatetime | date = Field(description="RFC 3339 time, or a date for all day.")
    end: AwareDatetime | date = Field(description="RFC 3339 time, or a date (exclusive).")
    time_zone: str | None = Field(None, description="The event's IANA zone (Europe/Berlin).")
    description: str = Field("", max_length=8192)
    location: str = Field("", max_length=1024)
    attendees: list[Email] = Field(default_factory=list, max_length=50)
    notify_attendees: bool = Field(False, description="Let Google e-mail the attendees.")

    _check_zone = field_validator("time_zone")(_zone)

    @model_validator(mode="after")
    def _same_kind(self) -> Self:
        if isinstance(self.start, datetime) != isinstance(self.end, datetime):
            raise ValueError("start and end must both be times or both be dates")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class RespondParams(Params):
    id: EventId
    calendar: CalendarId = "primary"
    response: Literal["accepted", "declined", "tentative"]


# ------------------------------------------------------------------------------- results


class Calendar(BaseModel):
    id: str
    summary: UntrustedText = ""
    description: UntrustedText = ""
    time_zone: str | None = None
    access_role: str | None = None
    primary: bool = False


class CalendarList(BaseModel):
    calendars: list[Calendar]


class Attendee(BaseModel):
    email: str | None = None
    name: UntrustedText = ""
    response: str | None = None
    organizer: bool = False
    self: bool = False
    optional: bool = False


class Event(BaseModel):
    id: str
    calendar: str
    summary: UntrustedText = ""
    description: UntrustedText = ""
    location: UntrustedText = ""
    start: str = Field(description="RFC 3339 time with offset, or a date when all_day.")
    end: str = Field(description="RFC 3339 time with offset, or a date (exclusive).")
    all_day: bool = False
    time_zone: str | None = Field(None, description="The event's own IANA zone.")
    status: str | None = None
    organizer: Attendee | None = None
    attendees: list[Attendee] = Field(default_factory=list)
    recurring_event_id: str | None = None
    link: str | None = None
    meeting_link: str | None = None


class EventList(BaseModel):
    calendar: str
    events: list[Event]
    truncated: bool = Field(False, description="More events matched than the limit.")


class Busy(BaseModel):
    start: str
    end: str


class CalendarBusy(BaseModel):
    id: str
    busy: list[Busy]
    errors: list[str] = Field(default_factory=list)


class FreeBusy(BaseModel):
    start: str
    end: str
    calendars: list[CalendarBusy]
