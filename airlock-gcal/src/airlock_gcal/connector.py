"""The ``gcal`` connector: Google Calendar through gcsa.

Reads need only ``calendar.readonly`` (Google refuses a write on that grant whatever
Airlock does); writes exist only when the service says ``write: true``, and each one
still needs the person's approval of that exact call. ``calendars`` limits which
calendars agents may see; anything else is refused before Google is asked.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from airlock.plugin import (
    Access,
    AirlockError,
    CheckResult,
    Clock,
    Connector,
    ConnectorAuthError,
    Forbidden,
    InvalidInput,
    SystemClock,
    operation,
)
from airlock_gcal.convert import as_calendar, as_event, busy_of, rfc3339
from airlock_gcal.google import (
    RateLimitRetry,
    Sleep,
    authorized_calendar,
    explain,
    pause,
    to_the_end,
)
from airlock_gcal.models import (
    CalendarList,
    CreateEventParams,
    Event,
    EventList,
    FreeBusy,
    FreeBusyParams,
    GetEventParams,
    ListCalendarsParams,
    ListEventsParams,
    RespondParams,
    TodayParams,
    UpcomingParams,
)
from airlock_gcal.settings import GcalCredentials, GcalSettings

if TYPE_CHECKING:
    from gcsa.google_calendar import GoogleCalendar

__all__ = ["GcalConnector"]

T = TypeVar("T")
PAGE = 250  # Google's default page of events.list


class GcalConnector(Connector[GcalSettings]):
    name = "gcal"
    title = "Google Calendar"
    Settings: ClassVar[type[BaseModel]] = GcalSettings
    Credentials: ClassVar[type[BaseModel]] = GcalCredentials

    def __init__(
        self,
        settings: BaseModel,
        credentials: BaseModel,
        *,
        service: str,
        sleep: Sleep = pause,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, credentials, service=service)
        assert isinstance(credentials, GcalCredentials)
        self._secrets = credentials
        self._retry = RateLimitRetry(sleep)
        self._clock = clock or SystemClock()
        self._calendar: GoogleCalendar | None = None
        self._lock = asyncio.Lock()  # one request at a time: httplib2 is not thread-safe
        self.problem: str | None = None

    async def open(self) -> None:
        if self._calendar is None:
            self._calendar = await asyncio.to_thread(
                authorized_calendar, self.settings, self._secrets, self._retry
            )

    async def close(self) -> None:
        self._calendar = None

    async def check(self) -> CheckResult:
        try:
            listing = await self.list_calendars(ListCalendarsParams())
        except AirlockError as exc:
            said = f"{exc.message}; {exc.hint}" if exc.hint else exc.message
            return CheckResult(ok=False, summary=said)
        primary = next((c.id for c in listing.calendars if c.primary), None)
        found = f"{len(listing.calendars)} calendar(s)"
        return CheckResult(ok=True, summary=found + (f", primary {primary}" if primary else ""))

    # -- plumbing -------------------------------------------------------------------------

    async def _google(self, what: str, work: Callable[[GoogleCalendar], T]) -> T:
        """Run *work* in a thread with the client; its failure in Airlock's words."""
        await self.open()
        calendar = self._calendar
        assert calendar is not None
        async with self._lock:
            try:
                result = await to_the_end(lambda: work(calendar))
            except Exception as exc:
                error = explain(exc, service=self.service, what=what, secrets=self._held(calendar))
                if isinstance(error, ConnectorAuthError):
                    self.problem = error.message
                raise error from None
        self.problem = None
        return result

    def _held(self, calendar: GoogleCalendar) -> list[str]:
        """What Google could quote back of what the connector sends it: the access token
        of the moment, the refresh token and the client secret."""
        token = getattr(getattr(calendar, "credentials", None), "token", None)
        held = [
            self._secrets.client_secret.get_secret_value(),
            self._secrets.refresh_token.get_secret_value(),
        ]
        return [*held, token] if isinstance(token, str) else held

    def _allowed(self, *calendars: str) -> None:
        for calendar in calendars:
            if not self.settings.allows(calendar):
                raise Forbidden(
                    f"calendar {calendar!r} is not in service {self.service!r}'s calendars",
                    hint="the person lists allowed calendars in config.yaml",
                )

    def _writable(self) -> None:
        if not self.settings.write:
            raise Forbidden(
                f"service {self.service!r} is read-only",
                hint="set write: true for it in config.yaml and run `airlock gcal auth` again",
            )

    async def _events(
        self, calendar: str, start: datetime, end: datetime, query: str | None, limit: int
    ) -> EventList:
        self._allowed(calendar)

        def work(gc: GoogleCalendar) -> EventList:
            found = gc.get_events(
                time_min=start,
                time_max=end,
                order_by="startTime",  # with singleEvents: recurring events expanded
                single_events=True,
                query=query,
                calendar_id=calendar,
                # One more than asked, so a full page says whether more exist.
                maxResults=min(limit + 1, PAGE),
            )
            events = [as_event(e, calendar) for e in itertools.islice(found, limit + 1)]
            return EventList(
                calendar=calendar, events=events[:limit], truncated=len(events) > limit
            )

        return await self._google(f"events of {calendar!r}", work)

    # -- reads ----------------------------------------------------------------------------

    @operation(
        access=Access.READ,
        params=ListCalendarsParams,
        result=CalendarList,
        description="List the calendars this service may use.",
    )
    async def list_calendars(self, params: ListCalendarsParams) -> CalendarList:
        def work(gc: GoogleCalendar) -> CalendarList:
            return CalendarList(calendars=[as_calendar(c) for c in gc.get_calendar_list()])

        listing = await self._google("calendar list", work)
        allowed = [c for c in listing.calendars if self.settings.allows(c.id)]
        if self.settings.calendars is not None and "primary" in self.settings.calendars:
            allowed += [c for c in listing.calendars if c.primary and c not in allowed]
        return CalendarList(calendars=allowed)

    @operation(
        access=Access.READ,
        params=ListEventsParams,
        result=EventList,
        description="Events between start and end (RFC 3339), recurring ones expanded, "
        "ordered by start; query searches their text.",
    )
    async def list_events(self, params: ListEventsParams) -> EventList:
        return await self._events(
            params.calendar, params.start, params.end, params.query, params.limit
        )

    @operation(
        access=Access.READ,
        params=TodayParams,
        result=EventList,
        description="Today's events (in time_zone, or the machine's zone).",
    )
    async def today(self, params: TodayParams) -> EventList:
        zone = ZoneInfo(params.time_zone) if params.time_zone else None
        day = datetime.fromtimestamp(self._clock.now(), zone).date()
        start, end = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
        return await self._events(params.calendar, start, end, None, params.limit)

    @operation(
        access=Access.READ,
        params=UpcomingParams,
        result=EventList,
        description="Events in the next `hours` hours (default 24).",
    )
    async def upcoming(self, params: UpcomingParams) -> EventList:
        now = datetime.fromtimestamp(self._clock.now()).astimezone()
        end = now + timedelta(hours=params.hours)
        return await self._events(params.calendar, now, end, None, params.limit)

    @operation(
        access=Access.READ,
        params=GetEventParams,
        result=Event,
        description="One event by id.",
    )
    async def get_event(self, params: GetEventParams) -> Event:
        self._allowed(params.calendar)

        def work(gc: GoogleCalendar) -> Event:
            return as_event(gc.get_event(params.id, calendar_id=params.calendar), params.calendar)

        return await self._google(f"event {params.id!r}", work)

    @operation(
        access=Access.READ,
        params=FreeBusyParams,
        result=FreeBusy,
        description="Busy times of calendars between start and end.",
    )
    async def free_busy(self, params: FreeBusyParams) -> FreeBusy:
        self._allowed(*params.calendars)

        def work(gc: GoogleCalendar) -> FreeBusy:
            found = gc.get_free_busy(
                params.calendars,
                time_min=params.start,
                time_max=params.end,
                ignore_errors=True,
            )
            return FreeBusy(
                start=rfc3339(params.start),
                end=rfc3339(params.end),
                calendars=[busy_of(found, c) for c in params.calendars],
            )

        return await self._google("free/busy", work)

    # -- writes ---------------------------------------------------------------------------

    @operation(
        access=Access.WRITE,
        params=CreateEventParams,
        result=Event,
        description="Create an event (a date for start and end makes it all day).",
    )
    async def create_event(self, params: CreateEventParams) -> Event:
        self._writable()
        self._allowed(params.calendar)
        from gcsa.event import Event as GcsaEvent

        # Our own id (base32hex: 0-9 a-v) makes the insert idempotent: httplib2 sends a
        # request again when the connection drops before the answer, and Google answers
        # a second insert of the same id with 409 instead of a second event (and e-mails).
        event_id = secrets.token_hex(16)

        def work(gc: GoogleCalendar) -> Event:
            from googleapiclient.errors import HttpError

            start, end = _whole_seconds(params.start), _whole_seconds(params.end)
            event = GcsaEvent(
                params.summary,
                start=start,
                end=end,
                event_id=event_id,
                timezone=params.time_zone,
                description=params.description or None,
                location=params.location or None,
                attendees=list(params.attendees),
            )
            send = "all" if params.notify_attendees else "none"
            try:
                created = gc.add_event(event, send_updates=send, calendar_id=params.calendar)
            except HttpError as exc:
                if exc.resp.status != 409:
                    raise
                created = gc.get_event(event_id, calendar_id=params.calendar)  # ours, made
            return as_event(created, params.calendar)

        return await self._google(f"a new event in {params.calendar!r}", work)

    @operation(
        access=Access.WRITE,
        params=RespondParams,
        result=Event,
        description="Answer an invitation: accepted, declined or tentative.",
    )
    async def respond(self, params: RespondParams) -> Event:
        self._writable()
        self._allowed(params.calendar)
        from gcsa.serializers.event_serializer import EventSerializer

        def work(gc: GoogleCalendar) -> Event:
            events = gc.service.events()
            ids = {"calendarId": params.calendar, "eventId": params.id}
            raw: dict[str, Any] = events.get(**ids).execute()
            attendees = raw.get("attendees") or []
            mine = [a for a in attendees if a.get("self")]
            if not mine:
                raise InvalidInput(
                    f"event {params.id!r} has no invitation for you to answer", field="id"
                )
            for attendee in mine:
                attendee["responseStatus"] = params.response
            # A patch replaces the whole attendees list: send it back with only ours changed.
            patched = events.patch(
                **ids,
                body={"attendees": attendees},
                sendUpdates="none",
            ).execute()
            return as_event(EventSerializer.to_object(patched), params.calendar)

        return await self._google(f"event {params.id!r}", work)

    async def describe(self, operation: str, params: BaseModel) -> str | None:
        """The event a write names by id (``respond``), for the person's approval
        prompt: its start and summary, read like ``get_event`` (nothing changes). The
        summary (an inviter's text) comes last, so a long one cannot push the start off
        the prompt's line."""
        event_id, calendar = getattr(params, "id", None), getattr(params, "calendar", None)
        if not isinstance(event_id, str) or not isinstance(calendar, str):
            return None
        event = await self.get_event(GetEventParams(id=event_id, calendar=calendar))
        title = event.summary or "(no title)"
        return f"event starting {event.start}, in calendar {calendar}: “{title}”"


def _midnight(day: date, zone: ZoneInfo | None) -> datetime:
    """The start of *day* in *zone* (the machine's zone when None), daylight saving included."""
    start = datetime.combine(day, datetime.min.time())
    return start.replace(tzinfo=zone) if zone else start.astimezone()


def _whole_seconds(moment: date | datetime) -> date | datetime:
    """gcsa refuses microseconds; Google keeps whole seconds anyway."""
    return moment.replace(microsecond=0) if isinstance(moment, datetime) else moment
