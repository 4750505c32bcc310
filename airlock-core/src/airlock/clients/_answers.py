"""What the answer to an access request means for the client: the granted session, or
the error it stands for (``StillPending`` when the wait ran out first)."""

from __future__ import annotations

from airlock import api
from airlock.errors import AccessDenied, ApprovalTimedOut, NotPending
from airlock.models import RequestStatus


class StillPending(ApprovalTimedOut):
    """The wait ended while the request still waits for the person. The same client
    asking again for the same thing resumes this request instead of opening another."""

    def __init__(self, created: api.AccessRequestCreated, waited: float) -> None:
        super().__init__(
            f"request {created.code} (fingerprint {created.fingerprint}) is still waiting "
            f"for the person's approval after {waited:g}s",
            hint=f"approve it with `airlock approve {created.code}` before it expires",
        )
        self.request_code = created.code
        self.fingerprint = created.fingerprint
        self.expires_at = created.expires_at


def outcome(state: api.RequestState, created: api.AccessRequestCreated) -> api.SessionGrant:
    """The session of an answered request, or the error its answer means."""
    if state.status == RequestStatus.APPROVED:
        if state.session is None:
            raise NotPending(
                f"request {created.code} was approved, but its session was already collected",
                hint="ask for access again",
            )
        return state.session
    if state.status == RequestStatus.DENIED:
        raise AccessDenied(f"the person denied request {created.code}")
    if state.status == RequestStatus.REVOKED:
        raise AccessDenied(
            f"request {created.code} was revoked before its session was collected",
            hint="ask for access again",
        )
    raise ApprovalTimedOut(
        f"request {created.code} expired before anyone approved it", hint="ask for access again"
    )
