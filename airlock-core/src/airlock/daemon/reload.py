"""Live reload (``airlock reload``, SIGHUP): the parts of the daemon the config decides,
which a reload builds aside and then puts in place.

The state store, the audit log, the vault and the TOTP secret are not among the parts:
sessions and pending requests live in the store, so they survive a reload untouched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airlock.common.logs import get_logger
from airlock.daemon.notifier_set import close_notifiers

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airlock.daemon.connector_link import HostConnection
    from airlock.daemon.listeners import Listener
    from airlock.framework.notifiers import Notifier
    from airlock.gateway.gateway import Gateway
    from airlock.gateway.services import Service
    from airlock.security.approvals import ApprovalService
    from airlock.security.audit import AuditLog
    from airlock.security.channels import Channels
    from airlock.security.code_checks import CodeChecker
    from airlock.security.replies import ReplyHandler
    from airlock.security.sessions import SessionManager
    from airlock.security.totp import TotpVerifier
    from airlock.settings.config import AirlockConfig


@dataclass(frozen=True)
class Parts:
    config: AirlockConfig
    services: dict[str, Service]
    sessions: SessionManager
    verifier: TotpVerifier
    codes: CodeChecker
    notifiers: dict[str, Notifier]
    channels: Channels
    approvals: ApprovalService
    replies: ReplyHandler
    gateway: Gateway


async def retire(
    listeners: Mapping[str, Listener],
    approvals: ApprovalService,
    notifiers: dict[str, Notifier],
    *,
    grace: float,
) -> None:
    """The parts a reload replaced, once the new ones are in use: their listeners (already
    stopped, see ``daemon.listeners``) ended, their approval tasks given *grace* seconds to
    end (a prompt still looking up what a write acts on goes out through the notifiers of
    when it was asked for), then closed with the notifiers."""
    try:
        await asyncio.gather(*(ls.task for ls in listeners.values()), return_exceptions=True)
        # Not closed before the new notifier took over (it may adopt what the old one
        # holds, signal-cli's connection): bounded, its take-over is.
        released = [asyncio.ensure_future(ls.released.wait()) for ls in listeners.values()]
        if released:
            _, late = await asyncio.wait(released, timeout=grace)
            for waiting in late:
                waiting.cancel()
        await approvals.finish(grace)
    finally:
        await close_notifiers(notifiers)  # also when the daemon stops meanwhile


async def recorded(
    parts: Parts, audit: AuditLog, host: HostConnection, *, running: AirlockConfig
) -> None:
    """The reload's audit record, durable before its parts are put in use. If the log
    cannot take it, the reload does not happen: the connector host (told the new services
    already) goes back to the *running* config, the new notifiers are closed unused."""
    try:
        await audit.append(
            "config_reloaded", services=sorted(parts.services), notifiers=sorted(parts.notifiers)
        )
    except BaseException:
        try:
            await host.configure(running)
        except Exception as exc:  # it is told again when it next connects
            get_logger("airlock.daemon").error("host_not_restored", error=type(exc).__name__)
        await close_notifiers(parts.notifiers)
        raise
