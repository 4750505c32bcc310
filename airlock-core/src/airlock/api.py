"""The HTTP API v1 as pydantic models (see docs/api.md).

The daemon validates bodies with these models, the clients parse answers with them, and
``GET /v1/openapi.json`` is generated from them, so the three cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from airlock.models import Access, RequestStatus

SERVICE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
OPERATION_PATTERN = r"^[a-z][a-z0-9_]{1,47}$"
TOTP_PATTERN = r"^[0-9]{6,8}$"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OperationRef(Body):
    service: str = Field(pattern=SERVICE_PATTERN)
    name: str = Field(pattern=OPERATION_PATTERN)
    params: dict[str, Any] = Field(default_factory=dict)


class AccessRequestIn(Body):
    services: list[str] = Field(min_length=1, max_length=16)
    # What an agent may ask for: never a person session (the dashboard's login).
    access: Literal[Access.READ, Access.WRITE, Access.SPEND] = Access.READ
    budget_usd: float | None = Field(
        None,
        gt=0,
        le=10_000,
        allow_inf_nan=False,
        description='For access "spend": the most the session may spend, in US dollars '
        "(default and cap: the service's max_usd)",
    )
    reason: str = Field(min_length=1, max_length=1000)
    ttl: str | None = Field(None, max_length=16, description='"90s", "60m", "8h"')
    operation: OperationRef | None = None
    agent: str | None = Field(None, max_length=64)
    sensitive: bool = False


class AccessRequestCreated(BaseModel):
    id: str
    code: str
    claim: str
    fingerprint: str
    expires_at: datetime


class BudgetInfo(BaseModel):
    """A spend session's budget in US dollars: approved, spent, held by calls running, left."""

    limit_usd: float
    spent_usd: float
    reserved_usd: float
    left_usd: float


class SessionInfo(BaseModel):
    id: str
    uid: int
    """Whose session it is (the uid that asked for it)."""
    services: list[str]
    access: Access
    created_at: datetime
    expires_at: datetime
    use_count: int = 0
    sensitive: bool = False
    budget: BudgetInfo | None = None


class SessionGrant(BaseModel):
    token: str
    id: str
    services: list[str]
    access: Access
    expires_at: datetime


class RequestState(BaseModel):
    id: str
    status: RequestStatus
    session: SessionGrant | None = None


class PendingRequest(BaseModel):
    id: str
    code: str
    fingerprint: str
    services: list[str]
    access: Access
    reason: str
    ttl: int
    requester_uid: int
    agent: str | None = None
    operation: dict[str, Any] | None = None
    budget_usd: float | None = None
    status: Literal["pending", "approved"] = "pending"
    """``approved``: approved, its session not collected yet (``expires_at`` is then the
    collection deadline)."""
    target: str | None = None
    """What a write acts on, in its service's words (untrusted text): only for a caller
    other than the requester (the daemon's owner or root), never for the agent."""
    created_at: datetime
    expires_at: datetime


class PendingList(BaseModel):
    requests: list[PendingRequest]
    uncollected: list[PendingRequest] = Field(default_factory=list)
    """Approved requests whose session has not been collected yet (``status: approved``)."""


class ApproveIn(Body):
    totp: str = Field(pattern=TOTP_PATTERN)


class Decided(BaseModel):
    id: str
    code: str
    status: RequestStatus


class SessionList(BaseModel):
    sessions: list[SessionInfo]
    uncollected: list[PendingRequest] = Field(default_factory=list)
    """Approved requests whose session has not been collected yet."""


class Revoked(BaseModel):
    revoked: list[str]
    cancelled: list[str] = Field(default_factory=list)
    """Approved requests whose session was not collected yet, cancelled by revoke-all."""


class OperationIn(Body):
    params: dict[str, Any] = Field(default_factory=dict)


class OperationOut(BaseModel):
    result: Any
    untrusted: Literal[True] = True
    service: str
    operation: str


class OperationInfo(BaseModel):
    name: str
    access: Access
    description: str
    params_schema: dict[str, Any]
    result_schema: dict[str, Any] = Field(default_factory=dict)
    destructive: bool = False
    open_world: bool = True


class ToolAliasInfo(BaseModel):
    """An MCP tool name from earlier releases, mapped to an operation (tool arg -> param)."""

    tool: str
    operation: str
    description: str
    args: dict[str, str] = Field(default_factory=dict)


class ServiceInfo(BaseModel):
    name: str
    connector: str
    title: str
    operations: list[OperationInfo]
    tool_aliases: list[ToolAliasInfo] = Field(default_factory=list)


class ServiceList(BaseModel):
    services: list[ServiceInfo]


class NotifierHealth(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class ServiceHealth(BaseModel):
    """Whether a service's last operation found its credentials accepted."""

    name: str
    ok: bool
    detail: str = ""


class DaemonStatus(BaseModel):
    version: str
    mode: str
    totp_enrolled: bool
    locked: bool
    locked_until: datetime | None = None
    pending: int
    sessions: list[SessionInfo]
    services: list[str]
    notifiers: list[NotifierHealth] = Field(default_factory=list)
    service_health: list[ServiceHealth] = Field(default_factory=list)
    pid: int
    audit_seq: int = Field(0, description="seq of the last audit record the daemon wrote")
    config_changed: bool = Field(
        False, description="the config file changed since the daemon read it: run airlock reload"
    )
    passphrase_locked: bool = Field(
        False, description="the passphrase lock is on and closed: the person runs airlock unlock"
    )


class UnlockIn(Body):
    passphrase: str = Field(min_length=1, max_length=1024)


class Unlocked(BaseModel):
    unlocked: bool


class TotpResetIn(Body):
    totp: str = Field(pattern=TOTP_PATTERN, description="a code of the current secret")


class TotpResetStarted(BaseModel):
    id: str = Field(description="the reset to confirm with POST /v1/totp/confirm")
    uri: str = Field(description="the new secret's otpauth:// URI, for the person's app only")
    expires_at: datetime = Field(description="confirm before this, or start again")
    sealed: bool = Field(description="the new secret is sealed with the current passphrase")


class TotpConfirmIn(Body):
    id: str = Field(min_length=1, max_length=64)
    totp: str = Field(pattern=TOTP_PATTERN, description="a code of the new secret")


class TotpReplaced(BaseModel):
    replaced: bool
    sealed: bool
    vault_rekeyed: bool


class Reloaded(BaseModel):
    services: list[str]
    notifiers: list[str]


class CredentialsIn(Body):
    totp: str = Field(pattern=TOTP_PATTERN)
    fields: dict[str, str] = Field(max_length=32)


class CredentialsOut(BaseModel):
    service: str
    fields: list[str]
    check: dict[str, Any] | None = None


class CredentialValue(BaseModel):
    service: str
    field: str
    value: str


class CredentialListing(BaseModel):
    credentials: list[dict[str, Any]]


class AuditEvents(BaseModel):
    events: list[dict[str, Any]]


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    hint: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail
