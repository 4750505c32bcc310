"""What the daemon answers about itself: status, the caller's sessions, the services and
their operations."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airlock._version import __version__
from airlock.api import (
    BudgetInfo,
    DaemonStatus,
    NotifierHealth,
    OperationInfo,
    ServiceHealth,
    ServiceInfo,
    ServiceList,
    SessionInfo,
    ToolAliasInfo,
)
from airlock.common.logs import get_logger
from airlock.errors import AirlockError
from airlock.framework.connectors import OperationSpec
from airlock.framework.spending import BudgetState
from airlock.gateway.services import Service
from airlock.security.peers import Peer
from airlock.state.store import Session

if TYPE_CHECKING:
    from airlock.daemon.runtime import Runtime

log = get_logger("airlock.daemon")
UNLISTED_RETRY = 60.0
"""Seconds before a service whose connector could not list its operations is asked again."""


def session_info(session: Session, budget: BudgetState | None = None) -> SessionInfo:
    from datetime import UTC, datetime

    return SessionInfo(
        id=session.id,
        uid=session.uid,
        services=list(session.services),
        access=session.access,
        created_at=datetime.fromtimestamp(session.created_at, UTC),
        expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        use_count=session.use_count,
        sensitive=session.sensitive,
        budget=BudgetInfo(**budget.as_usd()) if budget is not None else None,
    )


def status(rt: Runtime, peer: Peer) -> DaemonStatus:
    from datetime import UTC, datetime

    rt.refresh_totp()
    rt.gateway.uses.flush()
    problems = rt.gateway.auth_problems
    lock = rt.verifier.lock_state()
    return DaemonStatus(
        version=__version__,
        mode=rt.paths.mode.value,
        totp_enrolled=rt.verifier.enrolled or rt.keeper.locked,
        passphrase_locked=rt.keeper.locked,
        locked=lock.locked,
        locked_until=datetime.fromtimestamp(lock.locked_until, UTC) if lock.locked_until else None,
        pending=len(rt.approvals.pending(peer)),
        sessions=session_infos(rt, peer.uid),
        services=sorted(rt.services),
        notifiers=[NotifierHealth(**h) for h in rt.channels.health()],
        service_health=[
            ServiceHealth(name=name, ok=name not in problems, detail=problems.get(name, ""))
            for name in sorted(rt.services)
        ],
        pid=os.getpid(),
        audit_seq=rt.audit.last_seq,
        config_changed=rt.config_changed(),
    )


def session_infos(rt: Runtime, uid: int | None) -> list[SessionInfo]:
    """*uid*'s active sessions (every uid's with None), a spend session with its budget
    used and left."""
    budgets = rt.priced.budgets
    return [
        session_info(s, budgets.state(s.id) if s.access == "spend" else None)
        for s in rt.sessions.list(uid)
    ]


async def service_list(rt: Runtime) -> ServiceList:
    return ServiceList(
        services=[
            ServiceInfo(
                name=name,
                connector=svc.connector.name,
                title=svc.connector.title,
                operations=[
                    OperationInfo(
                        name=op.name,
                        access=op.access.value,
                        description=op.description,
                        params_schema=op.params_schema(),
                        result_schema=op.result_schema(),
                        destructive=op.destructive,
                        open_world=svc.connector.open_world,
                    )
                    for op in await _operations(rt, svc)
                ],
                tool_aliases=[
                    ToolAliasInfo(
                        tool=a.tool,
                        operation=a.operation,
                        description=a.description,
                        args=dict(a.args),
                    )
                    for a in svc.connector.tool_aliases
                ],
            )
            for name, svc in sorted(rt.services.items())
        ]
    )


async def _operations(rt: Runtime, service: Service) -> list[OperationSpec]:
    """The service's declared operations and those its connector lists when it opens
    (opening it the first time). One that cannot open lists its declared ones only."""
    declared = list(service.connector.operations.values())
    if not service.connector.lists_operations:
        return declared
    if rt.clock.now() < rt.unlisted_until.get(service.name, 0.0):
        return declared
    try:
        listed = await rt.gateway.host.listed(service.name)
    except Exception as exc:
        # An AirlockError's message is written for the agent, so it holds no secret.
        detail = exc.message if isinstance(exc, AirlockError) else type(exc).__name__
        log.warning("service_operations_unlisted", service=service.name, error=detail)
        # Clients ask for the list every few seconds: a server that cannot start is
        # not started again for each of them (an operation still tries at once).
        rt.unlisted_until[service.name] = rt.clock.now() + UNLISTED_RETRY
        return declared
    return declared + list(listed.values())
