"""The policy contract and the combine rule (see docs/plugins.md).

Every registered policy is asked; ``None`` abstains. Any DENY wins, then ASK, then ALLOW
(datasette's veto rule). With no verdicts at all the answer is ALLOW, because the
built-in ``scope`` and ``read-only`` policies always speak for the cases that matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from airlock.framework.operations import canonical_params, operation_hash
from airlock.framework.untrusted import UNTRUSTED, Untrusted, UntrustedText
from airlock.models import Access
from airlock.settings.config import DEFAULT_RATE_LIMIT, ServicePermissions

__all__ = [
    "UNTRUSTED",
    "Decision",
    "Policy",
    "PolicyContext",
    "ResultFilter",
    "SessionFacts",
    "Stage",
    "Untrusted",
    "UntrustedText",
    "Verdict",
    "apply_filters",
    "canonical_params",
    "combine",
    "evaluate",
    "operation_hash",
    "result_filters",
]


class Stage(StrEnum):
    """When a policy is asked: as an access request arrives (no session yet), or before
    an operation runs in a session."""

    REQUEST = "request"
    OPERATION = "operation"


class Decision(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


_RANK = {Decision.ALLOW: 0, Decision.ASK: 1, Decision.DENY: 2}


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str = ""
    policy: str = ""
    code: str = ""
    """A machine code for the refusal (``rate_limited`` maps to HTTP 429)."""


@dataclass(frozen=True)
class SessionFacts:
    id: str
    services: tuple[str, ...]
    access: Access
    uid: int
    sensitive: bool = False
    operation_hash: str | None = None
    """Set when the session came from a write approval: the one call it may run
    (:func:`operation_hash` of service, operation and canonical params)."""


@dataclass(frozen=True)
class PolicyContext:
    """What a policy sees: the service and operation asked for, and the session if any.

    ``permissions`` is this service's own block of the ``permissions`` config (defaults
    when it has none), and ``rate_limit`` is ``permissions.rate_limit``.
    """

    stage: Stage
    service: str
    access: Access
    operation: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    session: SessionFacts | None = None
    uid: int | None = None
    now: float = 0.0
    permissions: ServicePermissions = field(default_factory=ServicePermissions)
    rate_limit: int = DEFAULT_RATE_LIMIT

    @classmethod
    def of_call(
        cls,
        *,
        stage: Stage,
        service: str,
        access: Access,
        operation: str | None,
        params: dict[str, Any],
        session: SessionFacts | None,
        uid: int | None,
        now: float,
        permissions: ServicePermissions,
        rate_limit: int,
    ) -> PolicyContext:
        """The same as the class called with every field, for the gateway's every call:
        a frozen dataclass sets each field with ``object.__setattr__`` (1.7 us for these
        ten; this 0.6)."""
        ctx = object.__new__(cls)
        ctx.__dict__.update(
            stage=stage,
            service=service,
            access=access,
            operation=operation,
            params=params,
            session=session,
            uid=uid,
            now=now,
            permissions=permissions,
            rate_limit=rate_limit,
        )
        return ctx


@runtime_checkable
class Policy(Protocol):
    @property
    def name(self) -> str: ...

    def check(self, ctx: PolicyContext) -> Verdict | None: ...


@runtime_checkable
class ResultFilter(Protocol):
    def filter_result(self, ctx: PolicyContext, result: BaseModel) -> BaseModel: ...


def combine(verdicts: Iterable[Verdict | None]) -> Verdict:
    """DENY beats ASK beats ALLOW; the winning verdict keeps its reason."""
    best: Verdict | None = None
    for verdict in verdicts:
        if verdict is None:
            continue
        if best is None or _RANK[verdict.decision] > _RANK[best.decision]:
            best = verdict
    return best or Verdict(Decision.ALLOW, "no policy objected")


def evaluate(policies: Iterable[Policy], ctx: PolicyContext) -> Verdict:
    """Ask every policy and combine; a policy that raises counts as DENY (fail closed)."""
    verdicts: list[Verdict | None] = []
    for policy in policies:
        try:
            verdict = policy.check(ctx)
        except Exception as exc:  # a broken plugin must not open the gate
            verdict = Verdict(Decision.DENY, f"policy failed: {type(exc).__name__}", policy.name)
        if verdict is not None and not verdict.policy:
            verdict = Verdict(verdict.decision, verdict.reason, policy.name, verdict.code)
        verdicts.append(verdict)
    return combine(verdicts)


def result_filters(policies: Iterable[Policy]) -> list[ResultFilter]:
    """The policies that may rewrite results (found once; the protocol check is slow)."""
    return [policy for policy in policies if isinstance(policy, ResultFilter)]


def apply_filters(
    filters: Iterable[ResultFilter], ctx: PolicyContext, result: BaseModel
) -> BaseModel:
    for result_filter in filters:
        result = result_filter.filter_result(ctx, result)
    return result
