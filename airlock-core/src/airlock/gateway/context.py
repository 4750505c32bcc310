"""What the approval flow and the gateway both work with, built once per config in use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from airlock.common.clock import Clock
from airlock.framework.policies import Policy
from airlock.gateway.services import Service
from airlock.security.audit import AuditLog
from airlock.security.sessions import SessionManager
from airlock.security.targets import Describe, TargetNotes
from airlock.settings.config import AirlockConfig
from airlock.state.store import StateStore


@dataclass(frozen=True)
class DaemonContext:
    """The daemon's shared state for one config: the store and the sessions in it, the
    config and the services it names, the policies, the audit log and the clock; how to
    ask what a write acts on (``describe``) and the lines found (``targets``, which the
    daemon keeps across reloads).

    The daemon builds one when it starts and a new one on every reload; the approval
    service and the gateway built from it see the same services, sessions and policies.
    """

    store: StateStore
    sessions: SessionManager
    config: AirlockConfig
    clock: Clock
    audit: AuditLog
    services: Mapping[str, Service]
    policies: list[Policy]
    describe: Describe | None = None
    targets: TargetNotes = field(default_factory=TargetNotes)
