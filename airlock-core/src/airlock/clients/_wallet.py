"""The sessions a client process holds, and what it reports while it waits for one.

A session token is a bearer secret: it lives only in this process's memory, in
:class:`HeldSession`, whose ``repr`` and ``str`` leave it out, so it cannot reach a log,
a traceback or a model's context by accident.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from airlock.api import AccessRequestCreated, SessionGrant
from airlock.models import Access

# A session this close to its end is not used for a new call: it could expire in flight.
EXPIRY_MARGIN = timedelta(seconds=2)


@dataclass(frozen=True)
class HeldSession:
    """A session granted to this process; ``token`` is never shown."""

    id: str
    services: tuple[str, ...]
    access: Access
    expires_at: datetime
    token: str = field(repr=False, compare=False)

    @classmethod
    def from_grant(cls, grant: SessionGrant) -> HeldSession:
        return cls(grant.id, tuple(grant.services), grant.access, grant.expires_at, grant.token)

    def usable_for(self, service: str, now: datetime) -> bool:
        return service in self.services and now + EXPIRY_MARGIN < self.expires_at

    def describe(self) -> dict[str, object]:
        """What may be shown to a person or a model about this session (no token)."""
        return {
            "id": self.id,
            "services": list(self.services),
            "access": self.access,
            "expires_at": self.expires_at.isoformat(),
        }


class SessionWallet:
    """The held sessions, newest first; expired ones are dropped when looked at."""

    def __init__(self) -> None:
        self._sessions: list[HeldSession] = []

    def __repr__(self) -> str:
        return f"<SessionWallet {[s.id for s in self._sessions]}>"

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: HeldSession) -> None:
        self._sessions.insert(0, session)

    def find(self, service: str, access: Access = Access.READ) -> HeldSession | None:
        """The newest unexpired session on *service* whose access covers *access*."""
        now = datetime.now(UTC)
        self._sessions = [s for s in self._sessions if now < s.expires_at]
        return next(
            (s for s in self._sessions if s.usable_for(service, now) and s.access.allows(access)),
            None,
        )

    def discard(self, session: HeldSession) -> None:
        self._sessions = [s for s in self._sessions if s.id != session.id]

    def held(self) -> list[HeldSession]:
        return list(self._sessions)

    def take_all(self) -> list[HeldSession]:
        taken, self._sessions = self._sessions, []
        return taken


@dataclass(frozen=True)
class WaitStatus:
    """Where a wait for the person's approval stands (no claim, no token)."""

    request_id: str
    code: str
    fingerprint: str
    elapsed: float
    total: float

    @classmethod
    def of(cls, created: AccessRequestCreated, elapsed: float, total: float) -> WaitStatus:
        return cls(created.id, created.code, created.fingerprint, elapsed, total)

    def message(self) -> str:
        left = max(0, round(self.total - self.elapsed))
        return (
            f"waiting for the person to approve request {self.code} "
            f"(fingerprint {self.fingerprint}, {left}s left): they answer the prompt "
            f"on their phone or run `airlock approve {self.code}`"
        )


WaitCallback = Callable[[WaitStatus], Awaitable[None]]
