"""A base for notifiers that reach a messenger through its HTTP API (Telegram, Signal, the
next one), so what they share is written once.

:class:`HttpApi` is the client side: one httpx client opened on first use, and every
transport failure turned into :class:`ApiUnreachable` naming only what failed (the URL may
hold a token, so it is never quoted). An answer is read streamed and refused past a cap
(:data:`MAX_ANSWER_BYTES` unless the call says otherwise; compression is refused):
what comes back can carry anyone's messages, so its size is never the sender's to choose.
:class:`HttpNotifier` is the notifier side: its
settings (an :class:`~airlock.framework.backoff.ApiSettings`), the receive loop's back-off, the
backlog cut-off (a message from before the notifier started answers an old prompt, not a
new one), the prompts it remembers so a notice can point at one, the ``sent`` count and
the health ``airlock status`` shows. :func:`flatten_prompt` re-flattens a prompt's pieces
to single safe lines whatever core sent. A subclass adds how its messenger sends and what
a received message means.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar, cast

import httpx
from pydantic import BaseModel

from airlock.errors import NotifierError
from airlock.framework.backoff import ApiSettings, Sleep
from airlock.framework.notifiers import Notifier, Prompt
from airlock.security.prompts import REASON_LIMIT, untrusted_line

__all__ = [
    "MAX_ANSWER_BYTES",
    "AnswerTooLarge",
    "ApiUnreachable",
    "HttpApi",
    "HttpNotifier",
    "flatten_prompt",
    "parse_json",
]

DEFAULT_TIMEOUT = 15.0
MAX_ANSWER_BYTES = 1 << 20
"""The largest answer read by default (1 MiB); a receive call asks for its own cap."""
HEAD_BYTES = 1024
MAX_BYTES_EXTENSION = "airlock.max_bytes"
S = TypeVar("S", bound=ApiSettings)
R = TypeVar("R")
A = TypeVar("A", bound="HttpApi")


class ApiUnreachable(NotifierError):
    """No usable answer from the messenger's API; ``kind`` says what failed."""

    def __init__(self, service: str, kind: str) -> None:
        super().__init__(f"{service} unreachable: {kind}")
        self.kind = kind


class AnswerTooLarge(ApiUnreachable):
    """The answer went past the cap; reading stopped there. ``head`` is its first bytes
    (at most 1 KiB), for a caller that can learn from them which item to skip."""

    def __init__(self, service: str, limit: int, head: bytes) -> None:
        super().__init__(service, f"answer over {_size(limit)}")
        self.limit = limit
        self.head = head


def parse_json(data: bytes | str) -> Any:
    """*data* as JSON; ValueError for anything that is not, including nesting deep enough
    to exhaust the parser's recursion (a RecursionError out of a receive loop would end it)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class _CappedStream(httpx.AsyncByteStream):
    """An answer's body that raises AnswerTooLarge once more than *limit* bytes came."""

    def __init__(self, inner: httpx.AsyncByteStream, limit: int, service: str) -> None:
        self._inner = inner
        self._limit = limit
        self._service = service

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size, head = 0, b""
        async for chunk in self._inner:
            size += len(chunk)
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            if size > self._limit:
                raise AnswerTooLarge(self._service, self._limit, head)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CappedTransport(httpx.AsyncBaseTransport):
    """Caps every answer's body at the request's ``airlock.max_bytes`` extension.

    The cap counts bytes off the wire; the client asks for no compression and an answer
    compressed anyway is refused, so what is decoded is what was counted.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, service: str) -> None:
        self._inner = inner
        self._service = service

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            await response.aclose()
            raise ApiUnreachable(self._service, "a compressed answer")
        limit = request.extensions.get(MAX_BYTES_EXTENSION, MAX_ANSWER_BYTES)
        stream = cast(httpx.AsyncByteStream, response.stream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CappedStream(stream, limit, self._service),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class HttpApi:
    """A messenger's HTTP API; subclasses add its methods on top of :meth:`request`.

    Requests go only through the given transport (no proxy from the environment, which
    would bypass the cap), which defaults to a plain HTTP transport.
    """

    service: ClassVar[str] = "the messenger's API"

    def __init__(
        self, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self._transport = transport
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> httpx.Response:
        """One request, its answer read whole but never past *max_bytes* (1 MiB unless
        given; AnswerTooLarge); *read_timeout* replaces the default for a long poll."""
        if self._client is None:
            inner = self._transport or httpx.AsyncHTTPTransport()
            self._client = httpx.AsyncClient(
                transport=_CappedTransport(inner, self.service),
                timeout=self._timeout,
                headers={"Accept-Encoding": "identity"},
                trust_env=False,
            )
        try:
            return await self._client.request(
                method,
                url,
                json=dict(json) if json is not None else None,
                timeout=read_timeout if read_timeout is not None else self._timeout,
                extensions={MAX_BYTES_EXTENSION: max_bytes or MAX_ANSWER_BYTES},
            )
        except httpx.HTTPError as exc:
            raise ApiUnreachable(self.service, type(exc).__name__) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class HttpNotifier(Notifier, Generic[S, R]):
    """Base of notifiers over an HTTP API. ``S`` is the settings model (``Settings``), ``R``
    what a sent prompt is remembered as (a message id, a timestamp).

    The keywords are for tests and are the same for every such notifier: *sleep* (the
    back-off's waits), *clock* (the backlog cut-off) and *transport* (a local server).
    """

    Settings: ClassVar[type[BaseModel]] = ApiSettings
    backlog_seconds: ClassVar[float] = 60.0
    """Messages older than the notifier's start by more than this are a backlog."""
    remembered_prompts: ClassVar[int] = 500

    def __init__(
        self,
        settings: BaseModel,
        credentials: BaseModel,
        *,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(settings, credentials)
        # Settings is S for the subclass; a ClassVar cannot say so.
        self.config = cast(S, self.Settings.model_validate(settings))
        self.sleep: Sleep = sleep or asyncio.sleep
        self.backoff = self.config.backoff(self.sleep)
        self.not_before = clock() - self.backlog_seconds
        self.transport = transport
        self.problem = ""
        """Why this notifier cannot work (e.g. no token yet); shown as its health."""
        self.sent = 0
        self._prompts: OrderedDict[str, R] = OrderedDict()
        self._apis: list[HttpApi] = []
        self.prepare()

    def prepare(self) -> None:
        """Make this notifier's API clients (``self.opened(...)``), once the base is set
        up: a subclass overrides this, not ``__init__``, so the test keywords stay the
        base's. Building a client does no I/O; a missing credential goes in ``problem``."""

    def opened(self, api: A) -> A:
        """*api*, to be closed with this notifier."""
        self._apis.append(api)
        return api

    def remember(self, request_id: str, sent: R) -> None:
        """Remember the prompt sent for *request_id* (the oldest are forgotten)."""
        self._prompts[request_id] = sent
        while len(self._prompts) > self.remembered_prompts:
            self._prompts.popitem(last=False)

    def recall(self, request_id: str | None) -> R | None:
        return self._prompts.get(request_id) if request_id else None

    def conversation(self) -> tuple[Any, ...]:
        """What names the conversation this notifier's prompts are messages of (another
        chat's message ids are not this one's): by default every setting but the
        retries, and the credentials. A subclass names just what does (Telegram: the
        bot and the chat), so that a reload changing a timeout carries the prompts."""
        settings = self.config.model_dump(exclude={"retry_initial", "retry_max"})
        return (settings, self.credentials)

    def same_conversation(self, old: Notifier) -> bool:
        """Whether *old* (the same class) spoke in this notifier's conversation."""
        return (
            type(old) is type(self)
            and isinstance(old, HttpNotifier)
            and old.conversation() == self.conversation()
        )

    def carry_over(self, old: Notifier) -> None:
        """The prompts *old* sent (a notice after a reload still points at its prompt)
        and its backlog cut-off (a reply sent while the channel was down is an answer,
        not a backlog, however long the reload waited), if it was the same
        conversation. A subclass that overrides this calls it too."""
        if not self.same_conversation(old):
            return
        assert isinstance(old, HttpNotifier)
        prompts = OrderedDict(old._prompts)
        prompts.update(self._prompts)
        self._prompts = prompts
        self.not_before = min(self.not_before, old.not_before)

    async def close(self) -> None:
        self.backoff.close()
        for api in self._apis:
            await api.aclose()

    def health(self) -> dict[str, Any]:
        if self.problem:
            return {"ok": False, "detail": self.problem}
        return {**self.backoff.health(), "sent": self.sent}


def flatten_prompt(
    prompt: Prompt, *, value_limit: int, title_limit: int = 120, label_limit: int = 48
) -> Prompt:
    """*prompt* with its title, every label and value, and the reason each one short line.

    Core already sends them so; a channel flattens again so that its own rendering never
    depends on that (the reason is the agent's text and may be hostile).
    """
    return prompt.model_copy(
        update={
            "title": untrusted_line(prompt.title, title_limit),
            "lines": [
                (untrusted_line(label, label_limit), untrusted_line(value, value_limit))
                for label, value in prompt.lines
            ],
            "reason": untrusted_line(prompt.reason, REASON_LIMIT),
        }
    )


def _size(limit: int) -> str:
    return f"{limit / (1 << 20):g} MiB" if limit >= 1 << 20 else f"{limit} bytes"
