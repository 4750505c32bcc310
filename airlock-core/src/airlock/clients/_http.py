"""HTTP/1.1 to the daemon over its Unix socket, with daemon errors rebuilt as exceptions.

Every client (the CLI, the Python client, the MCP server) reaches the daemon through
:class:`DaemonConnection`, so they share one translation of the wire: an error body
``{"error": {"code", "message", "hint"?, "field"?}}`` becomes the class of
:mod:`airlock.errors` with that ``code`` (or, for a body without one, the class that
owns the status), and a missing or silent socket becomes :class:`DaemonUnreachable`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from airlock import errors
from airlock.api import ErrorOut
from airlock.clients._reach import START_HINT, _unreachable
from airlock.clients._wire import AnswerTooLarge, BadAnswer, ClosedEarly, Pool, encode_request
from airlock.models import first_problem

M = TypeVar("M", bound=BaseModel)

BASE_URL = "http://airlock"
KEEPALIVE = 5.0


def build(model: type[M], **fields: Any) -> M:
    """A request body; bad input is InvalidInput naming the field, as the daemon would say."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problem = first_problem(exc)
        raise errors.InvalidInput(str(problem), field=problem.field) from None


def error_from_response(status: int, body: bytes) -> errors.AirlockError:
    """The exception a daemon answer with an error *status* and *body* stands for."""
    try:
        detail = ErrorOut.model_validate_json(body).error
    except ValidationError:
        cls = errors.error_class_for_status(status)
        text = body.decode("utf-8", "replace").strip()[:200] or f"HTTP {status}"
        return cls(f"the daemon answered {status}: {text}")
    cls = errors.error_class_for(detail.code)
    if cls is errors.AirlockError:
        cls = errors.error_class_for_status(status)
    return cls(detail.message, hint=detail.hint, field=detail.field)


class DaemonConnection:
    """Keep-alive HTTP connections to the daemon's socket.

    Methods return parsed JSON (or a model) and raise :class:`airlock.errors.AirlockError`
    subclasses; transport exceptions never escape, so callers handle one error tree.

    The transport is :mod:`airlock.clients._wire` (HTTP/1.1 on asyncio streams), not an
    HTTP client library: on this path aiohttp's client cost ~1 ms a request over a raw
    request and httpx's ~3 ms, this ~0.1 ms (benchmarks/gateway.py,
    ``python_client_overhead_p50_ms``). No proxy from the environment applies: the
    socket is the only peer. An idle connection is dropped after KEEPALIVE seconds, well
    before the daemon closes idle connections itself, so a request is not sent on one the
    daemon just closed (a GET that meets one anyway is sent again, a POST never is).
    """

    def __init__(self, socket: Path, *, timeout: float = 10.0) -> None:
        self.socket = socket
        self.timeout = timeout
        self._pool = Pool(str(socket), keepalive=KEEPALIVE)

    def __repr__(self) -> str:
        return f"<DaemonConnection socket={str(self.socket)!r}>"

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer, or the matching AirlockError.

        *read_timeout* (default: the connection's ``timeout``) bounds the whole exchange:
        connecting, sending and reading the answer.
        """
        content: bytes | None = None
        sent_headers = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            content = (
                body.model_dump_json(exclude_none=True).encode()
                if isinstance(body, BaseModel)
                else json.dumps(dict(body)).encode()
            )
            sent_headers["Content-Type"] = "application/json"
        target = f"{path}?{urlencode({k: str(v) for k, v in params.items()})}" if params else path
        try:
            wire = encode_request(method, target, sent_headers, content)
        except ValueError as exc:
            raise errors.InvalidInput(f"refused to send {method} {path}: {exc}") from None
        try:
            async with asyncio.timeout(self.timeout if read_timeout is None else read_timeout):
                status, answer = await self._pool.exchange(wire, retry_idle=method == "GET")
        except TimeoutError:
            raise errors.DaemonUnreachable(
                f"the daemon at {self.socket} did not answer in time", hint=START_HINT
            ) from None
        except ClosedEarly:
            raise errors.DaemonUnreachable(
                f"the daemon at {self.socket} closed the connection before answering",
                hint=START_HINT,
            ) from None
        except AnswerTooLarge:
            raise errors.AirlockError("the daemon's answer is too large") from None
        except BadAnswer:
            raise errors.DaemonUnreachable(
                f"the daemon at {self.socket} sent an answer that is not HTTP", hint=START_HINT
            ) from None
        except OSError as exc:
            raise _unreachable(self.socket, exc) from None
        if status >= 400:
            raise error_from_response(status, answer)
        if not answer:
            return None
        try:
            return json.loads(answer)
        except ValueError:
            raise errors.AirlockError(
                f"the daemon answered {method} {path} with a body that is not JSON"
            ) from None

    async def fetch(self, model: type[M], method: str, path: str, **kw: Any) -> M:
        """:meth:`request`, with the answer validated as *model*."""
        return self.parse(model, await self.request(method, path, **kw))

    @staticmethod
    def parse(model: type[M], data: Any) -> M:
        """Validate a daemon answer; a mismatch means client and daemon versions differ."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise errors.AirlockError(
                f"unexpected answer from the daemon ({model.__name__}: {exc.error_count()} "
                "problems)",
                hint="the client and the daemon may be different Airlock versions",
            ) from None
