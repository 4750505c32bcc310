"""One operation through the gateway (see docs/architecture.md):

token → session → policies → write approval → connector → result filters → audit → answer.

The audit record is written (and fsynced) before the result leaves; if it cannot be
written the caller gets an error instead of the data (fail closed). A write also has an
``operation_started`` record, on disk before the write is sent (a streamed spend call's
is written as its request goes out).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from airlock.errors import (
    AirlockError,
    ApprovalRequired,
    BudgetExhausted,
    ConnectorAuthError,
    ConnectorError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from airlock.framework.connectors import Access, OperationSpec
from airlock.framework.operations import canonical_operation_params, operation_hash
from airlock.framework.policies import (
    Decision,
    PolicyContext,
    Stage,
    apply_filters,
    evaluate,
    result_filters,
)
from airlock.framework.spending import BudgetState
from airlock.gateway.context import DaemonContext
from airlock.gateway.operation_record import ok_fields
from airlock.gateway.priced_calls import BudgetCut, PricedCalls, audited_params
from airlock.gateway.services import Service
from airlock.gateway.session_use import SessionFactsCache, UseCounter
from airlock.security.peers import Peer
from airlock.security.throttle import AuditThrottle
from airlock.settings.config import ServicePermissions
from airlock.state.store import Session, WriteApproval

if TYPE_CHECKING:
    from airlock.connector_host.client import ConnectorHost


@dataclass(slots=True)  # not frozen: a frozen init costs every call ~3 times as much
class _Admitted:
    """An operation that passed authentication, validation and the policies."""

    session: Session
    service: Service
    spec: OperationSpec
    canonical: dict[str, Any]
    audited: dict[str, Any]
    """The parameters as the audit records them (a spend call's prompt only as a digest)."""
    ctx: PolicyContext
    where: dict[str, Any]
    approval: WriteApproval | None


class Gateway:
    def __init__(
        self,
        context: DaemonContext,
        *,
        host: ConnectorHost,
        priced: PricedCalls,
        on_credentials_rejected: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._store = context.store
        self._sessions = context.sessions
        self._services = context.services
        self._policies = context.policies
        self._clock = context.clock
        self._audit = context.audit
        self.host = host
        self.uses = UseCounter(context.store)
        self._refusals = AuditThrottle(context.clock)
        self._filters = result_filters(context.policies)
        self._permissions = context.config.permissions
        self._facts = SessionFactsCache()
        self._service_permissions: dict[str, ServicePermissions] = {}
        """``for_service`` of each service named so far (this gateway's config's: a
        reload builds a new gateway)."""
        self.priced = priced
        """The budgets and their pricing: the daemon keeps one across reloads (what it
        holds for calls in flight is not in the database yet)."""
        self._on_credentials_rejected = on_credentials_rejected
        self.auth_problems: dict[str, str] = {}
        """Services whose last operation had its credentials refused, and what was said
        (``airlock status`` shows them unhealthy until an operation succeeds again)."""

    async def run(
        self, token: str, peer: Peer, service_name: str, operation: str, params: Mapping[str, Any]
    ) -> BaseModel:
        """The operation's result, filtered, once its audit record is durable."""
        call = await self._admit(token, peer, service_name, operation, params)
        return await self._execute(call)

    async def stream(
        self, token: str, peer: Peer, service_name: str, operation: str, params: Mapping[str, Any]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """A spend operation streamed: the same checks as :meth:`run`, then the chunks as
        they arrive. Admission errors raise here; a refusal of the budget or the service
        raises from the first ``anext``, before any chunk. Closing the generator ends the
        upstream call, settles the budget and writes the call's audit record."""
        call = await self._admit(token, peer, service_name, operation, params)
        if call.spec.access is not Access.SPEND:
            raise InvalidInput(f"{service_name}.{operation} cannot be streamed", field="stream")
        return self._relay(call)

    async def _relay(self, call: _Admitted) -> AsyncGenerator[dict[str, Any], None]:
        facts: dict[str, Any] = {"stream": True}
        started = time.perf_counter()
        outcome, error = "ok", None
        # Nothing is served before a durable record of the call: written while the
        # service prepares its first chunk, awaited before that chunk is passed on.
        begun = asyncio.ensure_future(
            self._audit.append("operation_started", **call.where, params=call.audited, **facts)
        )
        chunks = self.priced.stream(
            self.host, call.service, call.spec, call.canonical, call.session.id, facts
        )
        revocations = self._store.revocations
        try:
            async for chunk in chunks:
                await begun
                if (
                    self._store.revocations != revocations
                    or self._clock.now() >= call.session.expires_at
                ):
                    revocations = self._store.revocations
                    self._still_active(call.session)
                yield chunk
        except BudgetCut:
            outcome, error = "cut", BudgetExhausted.code
            raise
        except AirlockError as exc:
            outcome, error = "error", exc.code
            await self._credentials_rejected(exc, call.ctx.service)
            raise
        except BaseException as exc:
            outcome, error = "error", type(exc).__name__
            raise
        finally:
            try:
                # Ended here (the agent gone, the session ended): the call is stopped and
                # settled now, so its record says what it cost.
                await chunks.aclose()
            finally:
                with contextlib.suppress(Exception):
                    await begun
                count = self.uses.add(call.session)
                await self._audit.append(
                    "operation",
                    **call.where,
                    params=call.audited,
                    outcome=outcome,
                    error=error,
                    count=count,
                    duration_ms=_ms(started),
                    **facts,
                )

    def _still_active(self, session: Session) -> None:
        """Raise when *session* was revoked or expired while its answer streamed: the rest
        of the answer is not the agent's any more."""
        now = self._clock.now()
        found = self._store.get_session(session.id)
        if found is None or not found.is_active(now):
            raise Unauthenticated(
                "the session ended (revoked or expired) while its answer streamed: "
                "the rest of it was not sent",
                hint="request access again",
            )

    async def _admit(
        self, token: str, peer: Peer, service_name: str, operation: str, params: Mapping[str, Any]
    ) -> _Admitted:
        """Authenticate, validate and ask the policies; an operation cleared to run."""
        session = self._sessions.authenticate(token, peer.uid)
        service = self._services.get(service_name)
        if service is None:
            raise NotFound(f"no service named {service_name!r}")
        spec = await self.host.spec(service, operation)
        canonical = canonical_operation_params(spec, params)
        spend = spec.access is Access.SPEND
        audited = audited_params(service.settings, canonical) if spend else canonical
        ctx = PolicyContext.of_call(
            stage=Stage.OPERATION,
            service=service_name,
            access=spec.access,
            operation=operation,
            params=canonical,
            session=self._facts.of(session),
            uid=peer.uid,
            now=self._clock.now(),
            permissions=self._permissions_of(service_name),
            rate_limit=self._permissions.rate_limit,
        )
        where = {
            **peer.audit_fields(),
            "session": session.id,
            "service": service_name,
            "op": operation,
        }
        verdict = evaluate(self._policies, ctx)
        if verdict.decision is Decision.DENY:
            await self._refused(where, verdict.reason, policy=verdict.policy)
            if verdict.code == "rate_limited":
                raise RateLimited(verdict.reason, hint="wait a minute")
            if verdict.code == "approval_required":
                raise ApprovalRequired(
                    f"{verdict.reason}: {service_name}.{operation} needs its own approval",
                    hint="request access with this operation and its exact parameters",
                )
            raise Forbidden(f"refused by policy {verdict.policy}: {verdict.reason}")
        approval = None
        if verdict.decision is Decision.ASK:
            digest = operation_hash(service_name, operation, canonical)
            approval = self._store.consume_write_approval(
                digest, session_id=session.id, now=self._clock.now()
            )
            if approval is None:
                await self._refused(where, "needs its own approval", params=audited)
                raise ApprovalRequired(
                    f"{service_name}.{operation} changes data and needs its own approval",
                    hint="request access with this operation and its exact parameters",
                )
        return _Admitted(session, service, spec, canonical, audited, ctx, where, approval)

    async def _execute(self, call: _Admitted) -> BaseModel:
        service_name = call.ctx.service
        facts: dict[str, Any] = {}
        started = time.perf_counter()
        if call.spec.access is Access.WRITE:
            await self._write_begins(call)
        try:
            budget = self._budget_of(call.session)
            if call.spec.access is Access.SPEND:
                result = await self.priced.run(
                    self.host, call.service, call.spec, call.canonical, call.session.id, facts
                )
            else:
                result = await self.host.call(
                    service_name, call.spec, call.canonical, budget=budget
                )
        except BaseException as exc:
            error = exc.code if isinstance(exc, AirlockError) else type(exc).__name__
            await self._audit.append(
                "operation",
                **call.where,
                params=call.audited,
                outcome="error",
                error=error,
                duration_ms=_ms(started),
                **facts,
            )
            if isinstance(exc, AirlockError):
                await self._credentials_rejected(exc, service_name)
                raise
            if not isinstance(exc, Exception):
                raise
            raise ConnectorError(
                f"{service_name}.{call.spec.name} failed: {type(exc).__name__}"
            ) from None
        self.auth_problems.pop(service_name, None)
        result = apply_filters(self._filters, call.ctx, result)
        fields = ok_fields(
            call.where,
            call.audited,
            count=self.uses.add(call.session),
            items=_items(result),
            duration_ms=_ms(started),
            approval=call.approval.request_id if call.approval else None,
            facts=facts,
        )
        await self._audit.append_encoded("operation", fields)
        return result

    async def _write_begins(self, call: _Admitted) -> None:
        """A write is sent only once a record of it is on disk: should the daemon stop
        before its answer, the log still says it may have run. Without that record it is
        not sent, and its approval can be used again."""
        approval = call.approval
        try:
            await self._audit.append(
                "operation_started",
                **call.where,
                params=call.audited,
                approval=approval.request_id if approval else None,
            )
        except BaseException:
            if approval is not None:
                self._store.restore_write_approval(approval)
            raise

    async def _credentials_rejected(self, exc: AirlockError, service: str) -> None:
        """A service refused its stored credentials: the person must hear it, since only
        they can fix it (the agent's error says no more than that it failed)."""
        if not isinstance(exc, ConnectorAuthError):
            return
        hint = f" ({exc.hint})" if exc.hint else ""
        self.auth_problems[service] = exc.message + hint  # shown by `airlock services`
        if self._on_credentials_rejected is not None:
            await self._on_credentials_rejected(service)

    def _permissions_of(self, service: str) -> ServicePermissions:
        found = self._service_permissions.get(service)
        if found is None:
            found = self._service_permissions[service] = self._permissions.for_service(service)
        return found

    def _budget_of(self, session: Session) -> BudgetState | None:
        if session.access != Access.SPEND:
            return None
        return self.priced.budgets.state(session.id)

    async def _refused(self, where: dict[str, Any], reason: str, **extra: Any) -> None:
        """Audit a refusal: the first of a session and reason per minute, with how many
        identical ones were left out since the last record (an agent looping on a refusal
        must not write a fsynced record per attempt)."""
        left_out = self._refusals.admit((where["session"], reason))
        if left_out is not None:
            await self._audit.append(
                "operation_denied", **where, reason=reason, left_out=left_out, **extra
            )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _items(result: BaseModel) -> int | None:
    """How many things a result carries (messages, events), for the audit line."""
    for value in result.__dict__.values():
        if isinstance(value, list):
            return len(value)
    return None
