"""Live reload (``airlock reload``, SIGHUP): the parts of the daemon the config decides,
which a reload builds aside and then puts in place.

The state store, the audit log, the vault and the TOTP secret are not among the parts:
sessions and pending requests live in the store, so they survive a reload untouched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airlock.daemon.notifier_set import close_notifiers

if TYPE_CHECKING:
    from airlock.framework.notifiers import Notifier
    from airlock.gateway.gateway import Gateway
    from airlock.gateway.services import Service
    from airlock.security.approvals import ApprovalService
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
    listeners: list[asyncio.Task[None]],
    approvals: ApprovalService,
    notifiers: dict[str, Notifier],
) -> None:
    """The parts a reload replaced, once the new ones are in use: their listeners (already
    cancelled) ended, their approval tasks and notifiers closed."""
    await asyncio.gather(*listeners, return_exceptions=True)
    await approvals.close()
    await close_notifiers(notifiers)
