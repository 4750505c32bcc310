"""The HTTP API v1 (see docs/api.md): one table of routes, used for both serving and OpenAPI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from aiohttp import web

from airlock import api
from airlock.daemon.http import (
    int_query,
    json_model,
    peer,
    read_body,
    whole_body,
)
from airlock.daemon.openapi import Route, openapi_document
from airlock.daemon.operation_calls import bearer_token, operation_call
from airlock.daemon.runtime import Runtime
from airlock.errors import Forbidden, InvalidInput, NotFound
from airlock.framework.operations import canonical_operation_params
from airlock.security.audit import shallow
from airlock.security.peers import speaks_for_owner, whose
from airlock.settings.durations import parse_duration

RUNTIME = web.AppKey("runtime", Runtime)
ROUTE_TABLE = web.AppKey("routes", tuple)
"""Every route the app serves (these and the OpenAI endpoint's), as the document shows them."""


def rt(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def _totp_header(request: web.Request) -> str:
    code = request.headers.get("X-Airlock-TOTP", "")
    if not code.isdigit() or not 6 <= len(code) <= 8:
        raise InvalidInput("send your current TOTP code in X-Airlock-TOTP", field="X-Airlock-TOTP")
    return code


def bearer(request: web.Request) -> str:
    return bearer_token(request.headers.get("Authorization", ""))


async def status(request: web.Request) -> web.StreamResponse:
    return json_model(rt(request).status(peer(request)))


async def services(request: web.Request) -> web.StreamResponse:
    return json_model(await rt(request).service_list())


async def create_request(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, api.AccessRequestIn)
    try:
        created = await rt(request).approvals.create_request(body, peer(request))
    except NotFound as exc:
        raise rt(request).explain_unknown_service(exc) from None
    return json_model(created, status=202)


async def get_request(request: web.Request) -> web.StreamResponse:
    wait = int_query(request, "wait", 0, lo=0, hi=60)
    state = await rt(request).approvals.collect(
        request.match_info["id"],
        request.headers.get("X-Airlock-Claim"),
        peer=peer(request),
        wait=wait,
    )
    return json_model(state)


async def list_requests(request: web.Request) -> web.StreamResponse:
    approvals, caller = rt(request).approvals, peer(request)
    waiting, uncollected = approvals.pending(caller), approvals.uncollected(caller)
    return json_model(api.PendingList(requests=waiting, uncollected=uncollected))


async def approve(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, api.ApproveIn)
    done = await rt(request).approvals.approve(
        request.match_info["id"], body.totp, peer=peer(request), channel="terminal"
    )
    return json_model(api.Decided(id=done.id, code=done.code, status=done.status))


async def deny(request: web.Request) -> web.StreamResponse:
    done = await rt(request).approvals.deny(
        request.match_info["id"], peer=peer(request), channel="terminal"
    )
    return json_model(api.Decided(id=done.id, code=done.code, status=done.status))


async def list_sessions(request: web.Request) -> web.StreamResponse:
    """The caller's sessions; the daemon's owner's or root's: every uid's, so the person
    can revoke one agent's session (in isolated mode each agent is a uid of its own)."""
    runtime, caller = rt(request), peer(request)
    runtime.gateway.uses.flush()
    uid = whose(caller)
    waiting = [r for r in runtime.approvals.uncollected(caller) if uid in (None, r.requester_uid)]
    return json_model(api.SessionList(sessions=runtime.session_infos(uid), uncollected=waiting))


async def revoke_session(request: web.Request) -> web.StreamResponse:
    revoked = await rt(request).approvals.revoke_session(
        request.match_info["id"][:64], peer(request)
    )
    return json_model(api.Revoked(revoked=[revoked]))


async def revoke_all(request: web.Request) -> web.StreamResponse:
    """The caller's sessions and approvals; the daemon's owner's or root's: everyone's
    (the panic button, as /revoke on a phone)."""
    caller = peer(request)
    revoked, cancelled = await rt(request).approvals.revoke_all(
        uid=whose(caller),
        channel="terminal",
        actor=caller.audit_fields(),
    )
    return json_model(api.Revoked(revoked=revoked, cancelled=cancelled))


async def check_operation(request: web.Request) -> web.StreamResponse:
    """Validate parameters as the operation will, without a session and without running
    it: a client checks an agent's arguments before it asks the person for anything."""
    body = await read_body(request, api.OperationIn)
    runtime, name = rt(request), request.match_info["service"]
    service = runtime.services.get(name)
    if service is None:
        raise runtime.explain_unknown_service(NotFound(f"no service named {name[:40]!r}"))
    spec = await runtime.gateway.host.spec(service, request.match_info["operation"])
    params = canonical_operation_params(spec, body.params)
    return json_model(api.OperationIn(params=params))


async def run_operation(request: web.Request) -> web.StreamResponse:
    authorization = request.headers.get("Authorization", "")
    bearer_token(authorization)  # no token: a 401 before the body is waited for
    body = await whole_body(request)
    service, operation = request.match_info["service"], request.match_info["operation"]
    return await operation_call(rt(request), peer(request), authorization, service, operation, body)


async def set_credentials(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, api.CredentialsIn)
    out = await rt(request).credentials.set(
        request.match_info["service"], body.totp, body.fields, peer(request)
    )
    return json_model(out)


async def remove_credentials(request: web.Request) -> web.StreamResponse:
    out = await rt(request).credentials.remove(
        request.match_info["service"], _totp_header(request), peer(request)
    )
    return json_model(out)


async def get_credential(request: web.Request) -> web.StreamResponse:
    service, field = request.match_info["service"], request.match_info["field"]
    value = await rt(request).credentials.get(service, field, _totp_header(request), peer(request))
    return json_model(api.CredentialValue(service=service, field=field, value=value))


async def list_credentials(request: web.Request) -> web.StreamResponse:
    listing = await rt(request).credentials.listing()
    return json_model(api.CredentialListing(credentials=listing))


async def audit_events(request: web.Request) -> web.StreamResponse:
    runtime, caller = rt(request), peer(request)
    if not speaks_for_owner(caller):
        raise Forbidden("only the owner of the daemon reads its audit log")
    since_raw = request.query.get("since")
    since = _parse_since(since_raw) if since_raw else None
    limit = int_query(request, "limit", 100, lo=1, hi=10_000)
    # newest=true: the limit keeps the newest matches (still listed oldest first), so a
    # burst of records cannot push the latest ones out of a listing.
    newest = request.query.get("newest", "").lower() in ("1", "true")
    # In a worker thread: a listing may read much of the log (a service that matches
    # nothing, over a year), and the event loop must keep answering meanwhile.
    events = await asyncio.to_thread(
        runtime.audit.query,
        since=since,
        service=request.query.get("service"),
        event=request.query.get("event"),
        limit=limit,
        newest_first=newest,
    )
    listed = events[::-1] if newest else events
    try:
        return json_model(api.AuditEvents(events=listed))
    except ValueError:  # a record put in the files by hand, nested past what JSON output takes
        return json_model(api.AuditEvents(events=shallow(listed)))


async def reload_config(request: web.Request) -> web.StreamResponse:
    if not speaks_for_owner(peer(request)):
        raise Forbidden("only the owner of the daemon (or root) may reload it")
    config = await rt(request).reload()
    return json_model(
        api.Reloaded(services=sorted(config.services), notifiers=list(config.approvals.notifiers))
    )


async def unlock(request: web.Request) -> web.StreamResponse:
    caller = peer(request)
    if not speaks_for_owner(caller):
        raise Forbidden("only the owner of the daemon (or root) may unlock it")
    body = await read_body(request, api.UnlockIn)
    await rt(request).unlock(body.passphrase, caller)
    return json_model(api.Unlocked(unlocked=True))


async def totp_reset(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, api.TotpResetIn)
    return json_model(await rt(request).totp_reset(body.totp, peer(request)))


async def totp_confirm(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, api.TotpConfirmIn)
    return json_model(await rt(request).totp_confirm(body.id, body.totp, peer(request)))


def _parse_since(raw: str) -> datetime:
    try:
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
        seconds = parse_duration(raw, field="since")
        return datetime.now(UTC) - timedelta(seconds=seconds)
    except OverflowError:
        raise InvalidInput(
            "since: outside the dates Airlock can count from", field="since"
        ) from None


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document(request.app[ROUTE_TABLE]))


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v1/status",
        status,
        "Daemon status and the caller's sessions",
        response=api.DaemonStatus,
    ),
    Route(
        "GET",
        "/v1/services",
        services,
        "Configured services and their operations",
        response=api.ServiceList,
    ),
    Route(
        "POST",
        "/v1/requests",
        create_request,
        "Ask for access",
        body=api.AccessRequestIn,
        response=api.AccessRequestCreated,
        status=202,
    ),
    Route("GET", "/v1/requests", list_requests, "Pending requests", response=api.PendingList),
    Route(
        "GET",
        "/v1/requests/{id}",
        get_request,
        "Wait for a decision; collect the session once",
        response=api.RequestState,
        query=("wait",),
        headers=("X-Airlock-Claim",),
    ),
    Route(
        "POST",
        "/v1/requests/{id}/approve",
        approve,
        "Approve with a TOTP code",
        body=api.ApproveIn,
        response=api.Decided,
    ),
    Route("POST", "/v1/requests/{id}/deny", deny, "Deny a request", response=api.Decided),
    Route(
        "GET",
        "/v1/sessions",
        list_sessions,
        "The caller's active sessions",
        response=api.SessionList,
    ),
    Route(
        "DELETE",
        "/v1/sessions",
        revoke_all,
        "Revoke all the caller's sessions",
        response=api.Revoked,
    ),
    Route(
        "DELETE", "/v1/sessions/{id}", revoke_session, "Revoke one session", response=api.Revoked
    ),
    Route(
        "POST",
        "/v1/ops/{service}/{operation}",
        run_operation,
        "Run an operation in a session",
        body=api.OperationIn,
        response=api.OperationOut,
        headers=("Authorization",),
    ),
    Route(
        "POST",
        "/v1/ops/{service}/{operation}/check",
        check_operation,
        "Check an operation's parameters without running it (no session needed)",
        body=api.OperationIn,
        response=api.OperationIn,
    ),
    Route(
        "GET",
        "/v1/credentials",
        list_credentials,
        "Which services and notifiers take credentials, and which have them stored",
        response=api.CredentialListing,
    ),
    Route(
        "POST",
        "/v1/credentials/{service}",
        set_credentials,
        "Store a service's credentials",
        body=api.CredentialsIn,
        response=api.CredentialsOut,
    ),
    Route(
        "DELETE",
        "/v1/credentials/{service}",
        remove_credentials,
        "Remove a service's credentials",
        response=api.CredentialsOut,
        headers=("X-Airlock-TOTP",),
    ),
    Route(
        "GET",
        "/v1/credentials/{service}/{field}",
        get_credential,
        "Read one credential value",
        response=api.CredentialValue,
        headers=("X-Airlock-TOTP",),
    ),
    Route(
        "GET",
        "/v1/audit",
        audit_events,
        "Audit events",
        response=api.AuditEvents,
        query=("since", "service", "event", "limit"),
    ),
    Route(
        "POST",
        "/v1/reload",
        reload_config,
        "Re-read the config, services and notifiers (owner or root)",
        response=api.Reloaded,
    ),
    Route(
        "POST",
        "/v1/unlock",
        unlock,
        "Open the passphrase lock (owner or root)",
        body=api.UnlockIn,
        response=api.Unlocked,
    ),
    Route(
        "POST",
        "/v1/totp/reset",
        totp_reset,
        "Start replacing the TOTP secret (a code of the current one); answers the new one",
        body=api.TotpResetIn,
        response=api.TotpResetStarted,
    ),
    Route(
        "POST",
        "/v1/totp/confirm",
        totp_confirm,
        "Put a started reset's secret in force (a code of the new one)",
        body=api.TotpConfirmIn,
        response=api.TotpReplaced,
    ),
    Route("GET", "/v1/openapi.json", openapi, "This document"),
)
