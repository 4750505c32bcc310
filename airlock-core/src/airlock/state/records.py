"""The rows of the state database as frozen dataclasses, and how a row becomes one."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from airlock.models import Access, RequestStatus


@dataclass(frozen=True)
class AccessRequest:
    """An agent's request for access, as stored (the claim only as its SHA-256)."""

    id: str
    code: str
    claim_hash: str
    fingerprint: str
    services: tuple[str, ...]
    access: Access
    reason: str
    ttl: int
    operation: dict[str, Any] | None
    requester_uid: int
    requester_pid: int | None
    status: RequestStatus
    created_at: float
    expires_at: float
    agent: str | None = None
    sensitive: bool = False
    decided_at: float | None = None
    session_id: str | None = None
    budget_nano: int | None = None
    """For access ``spend``: the amount asked for, in nano-dollars."""


@dataclass(frozen=True)
class Session:
    """An issued session; the token itself is never stored, only its SHA-256."""

    id: str
    token_hash: str
    services: tuple[str, ...]
    access: Access
    uid: int
    created_at: float
    expires_at: float
    request_id: str | None = None
    revoked_at: float | None = None
    use_count: int = 0
    sensitive: bool = False
    operation_hash: str | None = None
    """Set for a session made from a write approval: the one call it may run."""

    def __repr__(self) -> str:
        # The hash is not the token, but it is a lookup key: keep it out of logs.
        return (
            f"Session(id={self.id!r}, services={self.services!r}, access={self.access!r}, "
            f"uid={self.uid}, expires_at={self.expires_at}, revoked={self.revoked_at is not None})"
        )

    def is_active(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class WriteApproval:
    """The person's approval of one exact write operation, usable once."""

    request_id: str
    operation_hash: str
    created_at: float
    expires_at: float
    session_id: str | None = None
    used_at: float | None = None


def request_from_row(row: sqlite3.Row) -> AccessRequest:
    return AccessRequest(
        id=row["id"],
        code=row["code"],
        claim_hash=row["claim_hash"],
        fingerprint=row["fingerprint"],
        services=tuple(json.loads(row["services"])),
        access=Access(row["access"]),
        reason=row["reason"],
        ttl=row["ttl"],
        operation=json.loads(row["operation"]) if row["operation"] is not None else None,
        requester_uid=row["requester_uid"],
        requester_pid=row["requester_pid"],
        status=RequestStatus(row["status"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        agent=row["agent"],
        sensitive=bool(row["sensitive"]),
        decided_at=row["decided_at"],
        session_id=row["session_id"],
        budget_nano=row["budget_nano"],
    )


def session_from_row(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        token_hash=row["token_hash"],
        services=tuple(json.loads(row["services"])),
        access=Access(row["access"]),
        uid=row["uid"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        request_id=row["request_id"],
        revoked_at=row["revoked_at"],
        use_count=row["use_count"],
        sensitive=bool(row["sensitive"]),
        operation_hash=row["operation_hash"],
    )


def approval_from_row(row: sqlite3.Row) -> WriteApproval:
    return WriteApproval(
        request_id=row["request_id"],
        operation_hash=row["operation_hash"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        session_id=row["session_id"],
        used_at=row["used_at"],
    )
