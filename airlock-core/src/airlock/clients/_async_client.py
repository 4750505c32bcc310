"""The async client of the daemon; see :mod:`airlock.client` for the whole story."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from airlock import api
from airlock.clients._asking import Asking, WaitKey
from airlock.clients._http import DaemonConnection, build
from airlock.clients._person_calls import segment
from airlock.clients._proxies import ServiceProxy, find_operation, unknown_service
from airlock.clients._wallet import HeldSession, SessionWallet, WaitCallback
from airlock.errors import (
    AirlockError,
    ApprovalRequired,
    NotFound,
    Unauthenticated,
)
from airlock.models import Access

log = logging.getLogger("airlock.client")

DEFAULT_WAIT = 120.0


class AirlockClient(Asking):
    """An async client of the daemon on *socket* (default: ``AIRLOCK_SOCKET`` or the
    socket of this user's Airlock, see :mod:`airlock.settings.paths`).

    Keyword options: ``timeout`` for one ordinary request, ``approval_wait`` for how long
    an automatic approval (a write, or an MCP tool) may wait, ``agent`` the name shown to
    the person in approval prompts.
    """

    def __init__(
        self,
        socket: str | Path | None = None,
        *,
        timeout: float = 10.0,
        approval_wait: float = DEFAULT_WAIT,
        agent: str | None = None,
    ) -> None:
        if socket is None:
            from airlock.settings.paths import resolve_paths

            socket = resolve_paths().socket
        self.socket = Path(socket)
        self.approval_wait = approval_wait
        self.agent = agent
        self._conn = DaemonConnection(self.socket, timeout=timeout)
        self._wallet = SessionWallet()
        self._catalogue: dict[str, api.ServiceInfo] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._reason: str | None = None
        # Requests this client is waiting on, by what they ask for (see StillPending).
        self._waiting: dict[WaitKey, api.AccessRequestCreated] = {}

    def __repr__(self) -> str:
        held = [s.id for s in self._wallet.held()]
        return f"<AirlockClient socket={str(self.socket)!r} sessions={held}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Revoke the sessions this client obtained, then close the connection."""
        for held in self._wallet.take_all():
            try:
                await self.revoke(held.id)
            except AirlockError as err:
                # Exit must not hide the caller's own exception; the session still expires.
                log.warning("could not revoke session %s: %s", held.id, err)
        await self._conn.aclose()

    # -- daemon facts -------------------------------------------------------------

    async def status(self) -> api.DaemonStatus:
        return await self._conn.fetch(api.DaemonStatus, "GET", "/v1/status")

    async def services(self, *, refresh: bool = False) -> api.ServiceList:
        """The configured services and their operations (cached after the first call)."""
        if self._catalogue is None or refresh:
            listed = await self._conn.fetch(api.ServiceList, "GET", "/v1/services")
            self._catalogue = {s.name: s for s in listed.services}
        return api.ServiceList(services=list(self._catalogue.values()))

    async def catalogue(self) -> dict[str, api.ServiceInfo]:
        """The services by name, fetched once."""
        if self._catalogue is None:
            await self.services()
        assert self._catalogue is not None
        return self._catalogue

    def cached_catalogue(self) -> dict[str, api.ServiceInfo] | None:
        """The services by name if already fetched; attribute access cannot wait for them."""
        return self._catalogue

    # -- asking for access --------------------------------------------------------

    async def request_access(
        self,
        services: Sequence[str],
        reason: str,
        ttl: str | int | None = None,
        access: Access = Access.READ,
        *,
        wait: float | None = None,
        sensitive: bool = False,
        budget_usd: float | None = None,
        on_wait: WaitCallback | None = None,
    ) -> HeldSession:
        """Ask for a session on *services* and wait up to *wait* seconds for approval
        (default: the client's ``approval_wait``). ``access="spend"`` asks for an amount
        of money (*budget_usd*, default the service's ``max_usd``) on one LLM service.

        The session is kept by this client (and used by its operation calls) until it
        expires or the client closes; the returned value describes it, without the token
        in its repr.
        """
        key = ("session", str(access), str(budget_usd), *sorted(services))
        grant = await self._approval(
            key,
            lambda: self.submit_request(
                services,
                reason,
                access=access,
                ttl=ttl,
                sensitive=sensitive,
                budget_usd=budget_usd,
            ),
            wait=wait,
            on_wait=on_wait,
        )
        held = HeldSession.from_grant(grant)
        self._wallet.add(held)
        self._reason = reason
        return held

    def held_sessions(self) -> list[HeldSession]:
        """The unexpired sessions this client holds."""
        return self._wallet.held()

    async def ensure_session(
        self,
        service: str,
        reason: str,
        *,
        on_wait: WaitCallback | None = None,
        access: Access = Access.READ,
    ) -> HeldSession:
        """A held session on *service* covering *access*, asking for one if there is none
        (read access, or ``spend`` with the service's default budget).

        Concurrent callers for one service share a single request.
        """
        lock = self._locks.setdefault(service, asyncio.Lock())
        async with lock:
            held = self._wallet.find(service, access)
            if held is None:
                held = await self.request_access([service], reason, access=access, on_wait=on_wait)
            return held

    # -- operations ---------------------------------------------------------------

    async def call(
        self,
        service: str,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> api.OperationOut:
        """One ``POST /v1/ops/{service}/{operation}`` with *token* (default: a held session)."""
        if token is None:
            held = self._wallet.find(service)
            token = held.token if held else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self._conn.fetch(
            api.OperationOut,
            "POST",
            f"/v1/ops/{segment(service)}/{segment(operation)}",
            body=api.OperationIn(params=dict(params or {})),
            headers=headers,
        )

    async def check_params(
        self, service: str, operation: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The daemon's verdict on *params* (InvalidInput naming the field), no session used."""
        out = await self._conn.fetch(
            api.OperationIn,
            "POST",
            f"/v1/ops/{segment(service)}/{segment(operation)}/check",
            body=api.OperationIn(params=dict(params or {})),
        )
        return out.params

    async def invoke(
        self,
        service: str,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
        on_wait: WaitCallback | None = None,
        wait: float | None = None,
    ) -> api.OperationOut:
        """Run an operation with the held session, getting approvals where needed.

        A write operation is approved by the person for these exact *params* and runs
        with the one-use session that approval grants (no held session can run a write,
        docs/security.md); so is any call the daemon answers with ``approval_required``.
        Without a session on *service*, or when it expired or was revoked, a *reason*
        lets this ask for one (the MCP server does); without one it raises
        Unauthenticated.
        """
        args = dict(params or {})
        catalogue = await self.catalogue()
        try:
            op = find_operation(catalogue, service, operation)
        except AttributeError as exc:
            raise NotFound(str(exc), hint="GET /v1/services lists them") from None
        if op.access == Access.WRITE:
            return await self._approved_write(service, operation, args, reason, on_wait, wait)
        needed = Access.SPEND if op.access == Access.SPEND else Access.READ
        for attempt in (1, 2):
            held = self._wallet.find(service, needed)
            if held is None:
                if reason is None:
                    raise Unauthenticated(
                        f"this client holds no session for {service!r}"
                        + (" any more" if attempt == 2 else ""),
                        hint=f"call request_access(services=[{service!r}], reason=...) first",
                    )
                # Bad arguments are refused before the person is asked for anything.
                await self.check_params(service, operation, args)
                held = await self.ensure_session(service, reason, on_wait=on_wait, access=needed)
            try:
                return await self.call(service, operation, args, token=held.token)
            except ApprovalRequired:
                return await self._approved_write(service, operation, args, reason, on_wait, wait)
            except Unauthenticated:
                self._wallet.discard(held)  # expired or revoked: never present it again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _approved_write(
        self,
        service: str,
        operation: str,
        params: dict[str, Any],
        reason: str | None,
        on_wait: WaitCallback | None,
        wait: float | None = None,
    ) -> api.OperationOut:
        """Ask the person to approve this exact call, then make it with the one-use session."""
        why = reason or self._reason or f"{service}.{operation} called by the agent"
        key = ("write", service, operation, json.dumps(params, sort_keys=True, default=str))
        grant = await self._approval(
            key,
            lambda: self.submit_request(
                [service],
                why,
                access=Access.WRITE,
                operation=build(api.OperationRef, service=service, name=operation, params=params),
            ),
            wait=wait,
            on_wait=on_wait,
        )
        return await self.call(service, operation, params, token=grant.token)

    def service(self, name: str) -> ServiceProxy:
        """``airlock.service("my-imap")``: the proxy for a name that is not an identifier."""
        if self._catalogue is not None and name not in self._catalogue:
            raise unknown_service(name, self._catalogue)
        return ServiceProxy(self, name)

    def __getattr__(self, name: str) -> ServiceProxy:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.service(name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(self._catalogue or {})})
