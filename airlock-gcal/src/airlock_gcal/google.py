"""Talking to Google: one authorised gcsa client per open service, its errors in
Airlock's words, and polite waiting when Google rate-limits.

- The access token lives only in the ``Credentials`` object in memory. google-auth
  refreshes it before it expires; a 401 triggers one refresh and one retry (no more).
- gcsa has no endpoint option, so the googleapiclient service is built here with
  ``client_options={"api_endpoint": ...}`` and handed to ``GoogleCalendar``.
- Every request goes out through :class:`PatientRequest`: a 429, or a 403 whose reason
  is ``rateLimitExceeded``/``userRateLimitExceeded``, is retried after a growing wait
  (the sleep is injected, so tests do not wait). Such requests did nothing, so a write
  is safe to send again; other failures are never retried.
- A call the core gives up (its timeout passed, the agent went away) is cancelled, but
  its thread cannot be: :func:`to_the_end` marks it given up, so no request of it is
  sent from then on (a write waiting out a rate limit is never made after the agent was
  told it stopped), and waits for the thread, so the next call never shares the
  connection with it (httplib2 is not thread-safe).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from airlock.plugin import (
    AirlockError,
    ConnectorAuthError,
    ConnectorError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    withhold,
)

if TYPE_CHECKING:
    from gcsa.google_calendar import GoogleCalendar
    from googleapiclient.http import HttpRequest

    from airlock_gcal.settings import GcalCredentials, GcalSettings

__all__ = [
    "MAX_REQUESTS",
    "GivenUp",
    "RateLimitRetry",
    "Sleep",
    "authorized_calendar",
    "explain",
    "pause",
    "to_the_end",
]

T = TypeVar("T")
Sleep = Callable[[float], None]
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_TIMEOUT = 30.0
MAX_REQUESTS = 100
"""Requests one call may send: list_events' 2,500 events are 11 pages, each retried at
most 5 times when rate limited; a list whose pages never end is cut off here."""


class _Call:
    """One call's thread: whether it was given up, and how many requests it sent."""

    def __init__(self) -> None:
        self.given_up = threading.Event()
        self.sent = 0


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("gcal_call", default=None)


class GivenUp(ConnectorError):
    """The call was given up before this request was sent: nothing was sent."""


async def to_the_end(work: Callable[[], T]) -> T:
    """``asyncio.to_thread(work)``; when cancelled, no request of *work* is sent any
    more, and the cancellation goes on once its thread has ended."""
    this = _Call()

    def marked() -> T:
        _CALL.set(this)  # the thread runs in a copy of the context: this call's own
        return work()

    running = asyncio.ensure_future(asyncio.to_thread(marked))
    running.add_done_callback(_retrieved)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        this.given_up.set()
        await asyncio.wait([running])  # a second cancel ends this wait, not the thread
        raise


def _retrieved(done: asyncio.Future[Any]) -> None:
    """A given-up call's error was for nobody; fetch it so asyncio does not log it."""
    if not done.cancelled():
        done.exception()


def pause(seconds: float) -> None:
    """``time.sleep``, cut short when the call is given up: a rate-limit wait (up to 60 s)
    would otherwise hold the service's next calls after the agent was told it stopped."""
    this = _CALL.get()
    if this is None:
        time.sleep(seconds)
    else:
        this.given_up.wait(seconds)


def _may_send() -> None:
    """Refuse a request of a call given up, or one past :data:`MAX_REQUESTS`."""
    this = _CALL.get()
    if this is None:
        return
    if this.given_up.is_set():
        raise GivenUp("the call was given up before it was sent to Google; nothing was sent")
    this.sent += 1
    if this.sent > MAX_REQUESTS:
        raise ConnectorError(
            f"Google kept answering with more pages: stopped after {MAX_REQUESTS} requests",
            hint="ask for a shorter time range or a smaller limit",
        )


class RateLimitRetry:
    """Send a request again while Google says "too many", waiting longer each time."""

    def __init__(
        self,
        sleep: Sleep,
        *,
        attempts: int = 5,
        initial: float = 1.0,
        maximum: float = 16.0,
        longest_asked: float = 60.0,
    ) -> None:
        self.sleep = sleep
        self.attempts = attempts
        self.initial = initial
        self.maximum = maximum
        self.longest_asked = longest_asked

    def run(self, send: Callable[[], T]) -> T:
        from googleapiclient.errors import HttpError

        delay = self.initial
        for attempt in range(1, self.attempts + 1):
            _may_send()
            try:
                return send()
            except HttpError as exc:
                asked = _retry_after(exc)
                if not rate_limited(exc) or attempt == self.attempts or asked > self.longest_asked:
                    raise
                self.sleep(max(delay, asked))
                delay = min(delay * 2, self.maximum)
        raise AssertionError("unreachable")  # pragma: no cover


def _request_class(retry: RateLimitRetry) -> type[HttpRequest]:
    from googleapiclient.http import HttpRequest

    class PatientRequest(HttpRequest):  # type: ignore[misc]  # untyped library class
        def execute(self, http: Any = None, num_retries: int = 0) -> Any:
            return retry.run(lambda: HttpRequest.execute(self, http=http))

    return PatientRequest


def authorized_calendar(
    settings: GcalSettings, credentials: GcalCredentials, retry: RateLimitRetry
) -> GoogleCalendar:
    """A gcsa client for *settings*' endpoints; no request is made yet."""
    import httplib2
    from gcsa.google_calendar import GoogleCalendar
    from google.oauth2.credentials import Credentials
    from google_auth_httplib2 import AuthorizedHttp
    from googleapiclient.discovery import build

    creds = Credentials(  # type: ignore[no-untyped-call]
        token=None,  # fetched on the first request, kept in memory only
        refresh_token=credentials.refresh_token.get_secret_value(),
        token_uri=settings.token_uri,
        client_id=credentials.client_id,
        client_secret=credentials.client_secret.get_secret_value(),
        scopes=settings.scopes(),
    )
    plain = httplib2.Http(timeout=_TIMEOUT)
    # Google never redirects; httplib2 would follow a 308 with a refresh's body (client
    # secret, refresh token) to any address, https or not, and take another host's answer.
    plain.follow_redirects = False
    http = AuthorizedHttp(creds, http=plain, max_refresh_attempts=1)
    service = build(
        "calendar",
        "v3",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": settings.api_endpoint},
        requestBuilder=_request_class(retry),
        num_retries=0,
    )
    calendar = GoogleCalendar(credentials=creds)
    calendar.service = service
    return calendar


def rate_limited(exc: Any) -> bool:
    status = exc.resp.status
    return bool(status == 429 or (status == 403 and _reasons(exc) & RATE_LIMIT_REASONS))


def _retry_after(exc: Any) -> float:
    value = exc.resp.get("retry-after", "")
    return float(value) if str(value).isdigit() else 0.0


def _body(exc: Any) -> dict[str, Any]:
    try:
        data = json.loads(exc.content)
    except (ValueError, TypeError):
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _reasons(exc: Any) -> set[str]:
    errors = _body(exc).get("errors") or []
    return {str(e.get("reason")) for e in errors if isinstance(e, dict)}


def _message(exc: Any, secrets: Iterable[str]) -> str:
    """Google's explanation, on one line and short, any of *secrets* it quotes withheld
    first (so the cut shows no part of one)."""
    message = str(_body(exc).get("message") or exc.resp.reason or "no message")
    return str(withhold(message, secrets)).replace("\n", " ")[:200]


_GRANT_ERROR = re.compile(r"^\s*'?(?P<code>[a-z_]+)\b")
REAUTH = "run `airlock gcal auth {service}` again"


def explain(
    exc: BaseException, *, service: str, what: str, secrets: Iterable[str] = ()
) -> AirlockError:
    """*exc* from gcsa, googleapiclient, google-auth or the network, as an Airlock error.

    Messages carry Google's error code and message, never a token or the request: the
    *secrets* the connector holds (its tokens, the client secret) are withheld from
    Google's message, should an answer quote the request's headers back.
    """
    from google.auth.exceptions import RefreshError, TransportError
    from googleapiclient.errors import HttpError

    if isinstance(exc, AirlockError):
        return exc
    if isinstance(exc, RefreshError):
        match = _GRANT_ERROR.match(str(exc.args[0]) if exc.args else "")
        code = match.group("code") if match else "refresh_failed"
        if code == "invalid_grant":
            return ConnectorAuthError(
                "Google no longer accepts the stored authorisation (invalid_grant: revoked, "
                "expired, or the OAuth app is in Testing and 7 days have passed)",
                hint=REAUTH.format(service=service),
            )
        if code == "invalid_scope":
            return ConnectorAuthError(
                "the stored grant does not cover this service's scopes (invalid_scope: "
                "write: true needs calendar.events, granted only by a new authorisation)",
                hint=REAUTH.format(service=service),
            )
        return ConnectorAuthError(
            f"Google refused to refresh the access token ({code})",
            hint=REAUTH.format(service=service),
        )
    if isinstance(exc, HttpError):
        status, message = exc.resp.status, _message(exc, secrets)
        if status == 401:
            return ConnectorAuthError(
                f"Google rejected the access token after a refresh: {message}",
                hint=REAUTH.format(service=service),
            )
        if rate_limited(exc):
            return RateLimited(f"Google Calendar is rate limiting {what}: {message}")
        if status == 403:
            hint = None
            if _reasons(exc) & {"insufficientPermissions", "forbidden"}:
                hint = "set write: true and " + REAUTH.format(service=service)
            return Forbidden(f"Google Calendar refused {what}: {message}", hint=hint)
        if 300 <= status < 400:
            return ConnectorError(
                f"the Calendar API answered {what} with a redirect ({status}); Google "
                "sends none, so it was not followed",
                hint="check api_endpoint in config.yaml",
            )
        if status in (404, 410):
            return NotFound(f"Google Calendar found no {what}: {message}")
        if status == 400:
            return InvalidInput(f"Google Calendar refused {what}: {message}")
        return ConnectorError(f"Google Calendar failed {what} ({status}): {message}")
    import httplib2

    if isinstance(exc, TransportError | OSError | httplib2.HttpLib2Error):
        return ConnectorError(f"cannot reach Google: {type(exc).__name__}")
    return ConnectorError(f"Google Calendar failed {what}: {type(exc).__name__}")
