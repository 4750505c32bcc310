"""HTTP plumbing: the caller's identity, JSON bodies within the limit, JSON errors."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import math
import os
import pwd
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from airlock import api
from airlock.common.json_text import read_json
from airlock.common.logs import get_logger
from airlock.common.nesting import nested_deeper_than
from airlock.common.text import SURROGATE_ESCAPE
from airlock.daemon.connections import PEER, Connection, ConnectionGuard
from airlock.errors import (
    HTTP_ERRORS,
    AirlockError,
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    RequestTimedOut,
    error_class_for_status,
    state_unavailable,
)
from airlock.models import first_problem
from airlock.security.peers import Peer, peer_of
from airlock.state.store import RevocationNotWritten

log = get_logger("airlock.daemon")

BODY_LIMIT = 1024 * 1024
JSON = "application/json"
MAX_DEPTH = 32
"""How deeply a body's values may nest: deeper input is a 400, never a RecursionError."""
BODY_TIMEOUT = web.AppKey("body_timeout", float)
"""Seconds a body may take to arrive once its headers have (``daemon.idle_timeout``)."""
M = TypeVar("M", bound=BaseModel)
A = TypeVar("A")
"""What a handler the front door runs answers: a response, or (the fast path) its body."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: AirlockError) -> web.Response:
    retry_after = getattr(exc, "retry_after", None)  # a service asked to slow down
    headers = {"Retry-After": f"{math.ceil(retry_after)}"} if retry_after is not None else None
    return web.json_response({"error": exc.to_dict()}, status=exc.status, headers=headers)


def _http_error(exc: web.HTTPException) -> web.Response:
    known = exc.status in HTTP_ERRORS
    code = error_class_for_status(exc.status).code if known else "http_error"
    body = {"error": {"code": code, "message": exc.reason or code}}
    return web.json_response(
        body,
        status=exc.status,
        headers={"Allow": exc.headers.get("Allow", "")} if exc.status == 405 else None,
    )


INTERNAL_ERROR = json.dumps(
    {"error": {"code": "internal_error", "message": "internal error; see the daemon log"}}
).encode()


def internal_error() -> web.Response:
    """A bug's answer: a 500 that keeps its details in the daemon's log."""
    return web.Response(body=INTERNAL_ERROR, status=500, content_type=JSON)


def peer(request: web.BaseRequest) -> Peer:
    cached = request.get(PEER)
    if isinstance(cached, Peer):
        return cached
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        raise Forbidden("cannot identify the caller")
    found = peer_of(sock)
    request[PEER] = found
    return found


class UidGate:
    """``daemon.allowed_uids``, or by default the owner, root and the socket's group."""

    def __init__(self, allowed: list[int], socket_gid: int | None) -> None:
        self._explicit = set(allowed)
        self._owner = os.getuid()
        self._gid = socket_gid

    @property
    def socket_gid(self) -> int | None:
        return self._gid

    def set_allowed(self, allowed: list[int]) -> None:
        """After a reload: the new ``daemon.allowed_uids``."""
        self._explicit = set(allowed)

    def allows(self, uid: int) -> bool:
        if self._explicit:
            return uid in self._explicit or uid == self._owner
        if uid in (self._owner, 0):
            return True
        if self._gid is None:
            return False
        try:
            user = pwd.getpwuid(uid)
            group = grp.getgrgid(self._gid)
        except KeyError:
            return False
        return user.pw_gid == self._gid or user.pw_name in group.gr_mem


RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


StateFailed = Callable[[str, str], Awaitable[object]]
"""Records that a request's state write failed (its method and path)."""


class FrontDoor:
    """The daemon's front door, wrapped once around the app's whole handler (routing
    included) in place of a middleware, so aiohttp runs none of its per-request
    middleware machinery, and around every call the fast path answers (``fast_path``):
    marks the connection busy while its request runs; lets in only the uids the gate
    allows; answers every error as JSON with its status (an unknown path's 404 and a
    wrong method's 405 too), and a bug with a 500 that keeps its details in the daemon's
    log. A state database that refuses a write is a 503 (*state*: its path) and a record
    (*state_failed*): the audit record written before the refused write may tell of a
    change that was not made."""

    def __init__(
        self,
        gate: UidGate,
        guard: ConnectionGuard,
        *,
        state: object = "state.db",
        state_failed: StateFailed | None = None,
    ) -> None:
        self.gate = gate
        self.guard = guard
        self._state = state
        self._state_failed = state_failed

    def around(self, handler: RequestHandler) -> RequestHandler:
        """*handler* (aiohttp's) behind the door; it hands the request the peer found
        when it connected (``peer`` asks the kernel otherwise)."""

        async def gatekeeper(request: web.BaseRequest) -> web.StreamResponse:
            conn = self.guard.connection(request.transport)
            if conn is not None and conn.peer is not None:
                request[PEER] = conn.peer

            async def checked() -> web.StreamResponse:
                self.let_in(peer(request))
                return await handler(request)

            return await self.answer(conn, request.method, request.path, checked)

        return gatekeeper

    def let_in(self, caller: Peer) -> None:
        if not self.gate.allows(caller.uid):
            raise Forbidden(
                f"uid {caller.uid} may not use this Airlock", hint="see daemon.allowed_uids"
            )

    async def answer(
        self,
        conn: Connection | None,
        method: str,
        path: str,
        run: Callable[[], Awaitable[A]],
    ) -> A | web.Response:
        """What *run* answers, or its error as the JSON answer for it."""
        if conn is not None:
            conn.busy += 1
        try:
            return await run()
        except AirlockError as exc:
            return error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _http_error(exc)
        except sqlite3.OperationalError as exc:
            log.error("state_write_failed", path=path, error=str(exc))
            if self._state_failed is not None:
                # When the audit log refuses writes too, the answer says enough.
                with contextlib.suppress(AirlockError):
                    await self._state_failed(method, path)
            return error_response(
                state_unavailable(
                    self._state, revocation_held=isinstance(exc, RevocationNotWritten)
                )
            )
        except Exception as exc:  # a bug: answer cleanly, keep details out of the response
            log.error("unhandled_error", path=path, error=type(exc).__name__)
            return internal_error()
        finally:
            if conn is not None:
                conn.busy -= 1


async def read_body(request: web.Request, model: type[M]) -> M:
    return parse_body(await whole_body(request), model)


def operation_params(raw: bytes) -> dict[str, Any]:
    """``parse_body(raw, OperationIn).params`` without the model for the usual body (an
    object with at most ``params``, an object: JSON's keys are text, so the model would
    take it as it is); anything else through the model, for its error."""
    data = parse_json_object(raw)
    params = data.get("params", {})
    if type(params) is dict and all(name == "params" for name in data):
        return params
    return validated(data, api.OperationIn).params


def parse_body(raw: bytes, model: type[M]) -> M:
    """*raw* as a JSON object valid for *model*; a 400 naming the field otherwise."""
    return validated(parse_json_object(raw), model)


def validated(data: dict[str, Any], model: type[M]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problem = first_problem(exc)
        where = problem.field or "body"
        raise InvalidInput(f"{where}: {problem.message}", field=where) from None


async def whole_body(request: web.Request) -> bytes:
    """Every byte of the body, whatever the framing (Content-Length or chunked), up to
    the limit: ``read(n)`` alone returns only what has arrived so far."""
    if request.content_length is not None and request.content_length > BODY_LIMIT:
        raise PayloadTooLarge("request body over 1 MiB")
    if request.content.is_eof():  # it all came with the headers: no wait, no timer
        whole = request.content.read_nowait()
        if len(whole) > BODY_LIMIT:
            raise PayloadTooLarge("request body over 1 MiB")
        return whole
    body = bytearray()
    try:
        async with asyncio.timeout(request.app.get(BODY_TIMEOUT, 30.0)):
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > BODY_LIMIT:
                    raise PayloadTooLarge("request body over 1 MiB")
    except TimeoutError:
        raise RequestTimedOut("the request body did not arrive in time") from None
    return bytes(body)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object of at most ``MAX_DEPTH`` levels; anything else is a 400 naming where."""
    try:
        data: Any = read_json(raw) if raw else {}
    except RecursionError:
        raise _too_deep("body") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body is not valid JSON", field="body") from None
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object", field="body")
    escaped = SURROGATE_ESCAPE.search(raw) is not None
    # Each level opens with a bracket: with few of them in all, none is too deep.
    shallow = raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH
    for name, value in data.items():
        if not shallow and nested_deeper_than(value, MAX_DEPTH):
            raise _too_deep(str(name))
        if escaped and not _is_unicode(name, value):
            field = name.encode("utf-8", "replace").decode()
            raise InvalidInput(
                f"{field}: text with a lone surrogate (\\ud800 to \\udfff), not valid Unicode",
                field=field,
            )
    return data


def _is_unicode(name: str, value: Any) -> bool:
    """Whether every text in *name* and *value* is valid Unicode (no lone surrogate,
    which json.loads lets through and nothing after can encode: it was a 500)."""
    try:
        json.dumps([name, value], ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep(field: str) -> InvalidInput:
    return InvalidInput(f"{field}: nested more than {MAX_DEPTH} levels deep", field=field)


def int_query(request: web.Request, name: str, default: int, *, lo: int, hi: int) -> int:
    """Query parameter *name* as a number cut to [lo, hi]; *default* when absent."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number", field=name) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number", field=name)
    return int(min(max(value, lo), hi))


def json_model(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=model.model_dump_json().encode(), status=status, content_type=JSON)


def operation_body(result: BaseModel, service: str, operation: str) -> bytes:
    """``OperationOut``'s JSON built around the result's own (the core validated the
    result against the operation's result model once): the bytes
    ``json_model(OperationOut(result=result.model_dump(mode="json", by_alias=True), ...))``
    gives, without that dump, the envelope's validation and its dump."""
    return b'{"result":%b,"untrusted":true,"service":%b,"operation":%b}' % (
        result.model_dump_json(by_alias=True).encode(),
        to_json(service),
        to_json(operation),
    )
