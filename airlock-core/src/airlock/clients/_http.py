"""HTTP/1.1 to the daemon over its Unix socket, with daemon errors rebuilt as exceptions.

Every client (the CLI, the Python client, the MCP server) reaches the daemon through
:class:`DaemonConnection`, so they share one translation of the wire: an error body
``{"error": {"code", "message", "hint"?, "field"?}}`` becomes the class of
:mod:`airlock.errors` with that ``code`` (or, for a body without one, the class that
owns the status), and a missing or silent socket becomes :class:`DaemonUnreachable`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from airlock import errors
from airlock.api import ErrorOut
from airlock.clients._reach import START_HINT, _unreachable, no_socket
from airlock.models import first_problem

if TYPE_CHECKING:
    import aiohttp

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
    """One keep-alive HTTP connection pool to the daemon's socket.

    Methods return parsed JSON (or a model) and raise :class:`airlock.errors.AirlockError`
    subclasses; transport exceptions never escape, so callers handle one error tree.

    aiohttp's client, not httpx's: on this path it costs ~0.2 ms a request where httpx's
    async client costs ~1 ms (benchmarks/gateway.py, ``python_client_overhead_p50_ms``),
    and the daemon already depends on it. The session is made on first use, inside the
    event loop that uses it; aiohttp itself is imported then, so a command that finds no
    socket at all (no daemon) does not pay for it.
    """

    def __init__(self, socket: Path, *, timeout: float = 10.0) -> None:
        self.socket = socket
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"<DaemonConnection socket={str(self.socket)!r}>"

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            missing = no_socket(self.socket)  # no daemon: say so without loading aiohttp
            if missing is not None:
                raise missing
            import aiohttp

            # Plain HTTP over a Unix socket; no proxy from the environment may take the
            # request elsewhere (trust_env stays off). An idle connection is dropped after
            # KEEPALIVE seconds, well before the daemon closes idle connections itself, so
            # a request (a POST is never retried) is not sent on one the daemon just closed.
            self._http = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket), keepalive_timeout=KEEPALIVE),
                headers={"Accept": "application/json"},
                trust_env=False,
            )
        return self._http

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
        """Send one request; the decoded JSON answer, or the matching AirlockError."""
        content: bytes | None = None
        sent_headers = dict(headers or {})
        if body is not None:
            content = (
                body.model_dump_json(exclude_none=True).encode()
                if isinstance(body, BaseModel)
                else json.dumps(dict(body)).encode()
            )
            sent_headers["Content-Type"] = "application/json"
        session = self._session()
        import aiohttp

        timeout = aiohttp.ClientTimeout(
            total=self.timeout if read_timeout is None else read_timeout
        )
        query = {k: str(v) for k, v in params.items()} if params else None
        try:
            async with session.request(
                method,
                BASE_URL + path,
                data=content,
                params=query,
                headers=sent_headers,
                timeout=timeout,
            ) as response:
                status, answer = response.status, await response.read()
        except TimeoutError:
            raise errors.DaemonUnreachable(
                f"the daemon at {self.socket} did not answer in time", hint=START_HINT
            ) from None
        except aiohttp.ClientError as exc:
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
