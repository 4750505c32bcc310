"""The one path every TOTP code the person sends goes through, whatever it unlocks.

Approving a request (from the terminal or a phone), reading, setting or removing a
credential, logging in to the dashboard and replacing the TOTP secret all check a code
here, so each outcome is audited the same way: ``totp_verified`` with the channel and
what the code was for (the request, or the service and action), ``approval_failed``
with the channel, the purpose, why and the attempts left, and, when a wrong code locks approvals,
``approvals_locked`` plus a notice on every channel. A code is bound to its purpose in
the audit: the record says which request or credential action each accepted code served.

If the outcome cannot be recorded the caller gets ``AuditError`` (503), and nothing the
code would have unlocked happens: callers act only after :meth:`CodeChecker.check`
returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airlock.errors import ApprovalsLocked, CodeAlreadyUsed, InvalidCode
from airlock.framework.notifiers import Notice
from airlock.security.audit import Auditor
from airlock.security.channels import Channels
from airlock.security.totp import TotpVerifier


@dataclass(frozen=True)
class CodePurpose:
    """What one code is sent for; every field set here goes into the audit record.

    ``action`` is ``approve``, ``read_credential``, ``set_credentials``,
    ``remove_credentials``, ``dashboard_login`` or ``totp_reset`` (replacing the secret
    through the daemon, ``airlock.daemon.reenrol``).
    """

    action: str
    request: str | None = None
    request_code: str | None = None
    service: str | None = None
    field: str | None = None

    @classmethod
    def credential(cls, action: str, service: str, field: str | None = None) -> CodePurpose:
        return cls(action, service=service, field=field)

    def audit_fields(self) -> dict[str, Any]:
        fields = {
            "purpose": self.action,
            "request": self.request,
            "request_code": self.request_code,
            "service": self.service,
            "field": self.field,
        }
        return {k: v for k, v in fields.items() if v is not None}


class CodeChecker:
    """Checks a code with the verifier and records the outcome (see the module doc)."""

    def __init__(self, verifier: TotpVerifier, audit: Auditor, channels: Channels) -> None:
        self._verifier = verifier
        self._audit = audit
        self._channels = channels

    async def check(
        self,
        code: str,
        *,
        channel: str,
        purpose: CodePurpose,
        actor: Mapping[str, Any] | None = None,
    ) -> int:
        """The accepted code's time step, once its ``totp_verified`` record is durable.

        Raises what the verifier raises (``InvalidCode``, ``CodeAlreadyUsed``,
        ``ApprovalsLocked``, ``NotEnrolled``) after recording it, or ``AuditError``.
        """
        where = {**(actor or {}), "channel": channel, **purpose.audit_fields()}
        try:
            step = self._verifier.verify(code)
        except CodeAlreadyUsed as exc:
            left = self._verifier.lock_state().attempts_left
            await self._audit.append(
                "approval_failed", **where, why=exc.message, counted=False, attempts_left=left
            )
            raise
        except InvalidCode as exc:
            state = self._verifier.lock_state()
            await self._audit.append(
                "approval_failed",
                **where,
                why=exc.message,
                counted=True,
                attempts_left=state.attempts_left,
            )
            if state.locked:
                await self._announce_lock(state.locked_until, channel)
            raise
        except ApprovalsLocked:
            await self._audit.append(
                "approval_failed", **where, why="locked", counted=False, attempts_left=0
            )
            raise
        await self._audit.append("totp_verified", **where, step=step)
        return step

    async def _announce_lock(self, until: float | None, channel: str) -> None:
        when = datetime.fromtimestamp(until, UTC).strftime("%H:%M:%S UTC") if until else "later"
        await self._audit.append("approvals_locked", until=until, channel=channel)
        await self._channels.notify_all(
            Notice(text=f"Airlock: too many wrong codes. Approvals are locked until {when}.")
        )
