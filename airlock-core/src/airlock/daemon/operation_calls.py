"""What ``POST /v1/ops/{service}/{operation}`` answers: for the aiohttp route and for
the fast path (``fast_path``), which must answer exactly alike."""

from __future__ import annotations

from aiohttp import web

from airlock.daemon.http import JSON, operation_body, operation_params
from airlock.daemon.runtime import Runtime
from airlock.errors import NotFound, Unauthenticated
from airlock.security.peers import Peer


def bearer_token(header: str) -> str:
    """The session token an ``Authorization`` header carries; 401 when it has none."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("no session token", hint="send Authorization: Bearer alk_...")
    return token.strip()


async def operation_result(
    runtime: Runtime, caller: Peer, authorization: str, service: str, operation: str, raw: bytes
) -> bytes:
    """The JSON body of ``POST /v1/ops/{service}/{operation}``'s answer (``fast_path``
    writes it as is), from the ``Authorization`` header and the body's bytes."""
    token = bearer_token(authorization)
    params = operation_params(raw)
    try:
        result = await runtime.gateway.run(token, caller, service, operation, params)
    except NotFound as exc:
        raise runtime.explain_unknown_service(exc) from None
    return operation_body(result, service, operation)


async def operation_call(
    runtime: Runtime, caller: Peer, authorization: str, service: str, operation: str, raw: bytes
) -> web.Response:
    """The route's answer: :func:`operation_result`'s body."""
    body = await operation_result(runtime, caller, authorization, service, operation, raw)
    return web.Response(body=body, content_type=JSON)
