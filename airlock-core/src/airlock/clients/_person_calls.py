"""The person's side of the client: requests, sessions, credentials, the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from airlock import api
from airlock.clients._http import DaemonConnection, build

TOTP_HEADER = "X-Airlock-TOTP"


def segment(value: str) -> str:
    """One path segment: an agent-supplied name must not walk to another endpoint."""
    return quote(value, safe="")


UNLOCK_WAIT = 60.0


class PersonCalls:
    """The daemon's endpoints for the person (``airlock pending``, ``approve``, ...)."""

    _conn: DaemonConnection

    async def pending(self) -> api.PendingList:
        return await self._conn.fetch(api.PendingList, "GET", "/v1/requests")

    async def approve(self, ref: str, totp: str) -> api.Decided:
        """Approve request *ref* (its code or id) with the person's TOTP code."""
        path = f"/v1/requests/{segment(ref)}/approve"
        body = build(api.ApproveIn, totp=totp)
        return await self._conn.fetch(api.Decided, "POST", path, body=body)

    async def deny(self, ref: str) -> api.Decided:
        return await self._conn.fetch(api.Decided, "POST", f"/v1/requests/{segment(ref)}/deny")

    async def sessions(self) -> api.SessionList:
        return await self._conn.fetch(api.SessionList, "GET", "/v1/sessions")

    async def revoke(self, session_id: str) -> api.Revoked:
        path = f"/v1/sessions/{segment(session_id)}"
        return await self._conn.fetch(api.Revoked, "DELETE", path)

    async def reload(self) -> api.Reloaded:
        """Make the daemon re-read its config (the daemon's owner or root only)."""
        return await self._conn.fetch(api.Reloaded, "POST", "/v1/reload")

    async def unlock(self, passphrase: str) -> api.Unlocked:
        """Open the daemon's passphrase lock (the daemon's owner or root only)."""
        body = build(api.UnlockIn, passphrase=passphrase)
        # Two scrypt runs (the core's secret, then the connector host's key) on a busy
        # machine take longer than an ordinary answer.
        return await self._conn.fetch(
            api.Unlocked, "POST", "/v1/unlock", body=body, read_timeout=UNLOCK_WAIT
        )

    async def totp_reset(self, *, totp: str) -> api.TotpResetStarted:
        """Start replacing the TOTP secret with a code of the current one: the answer's
        URI holds the new secret (show it to the person only), in force once confirmed."""
        body = build(api.TotpResetIn, totp=totp)
        return await self._conn.fetch(api.TotpResetStarted, "POST", "/v1/totp/reset", body=body)

    async def totp_confirm(self, reset_id: str, *, totp: str) -> api.TotpReplaced:
        """Put the new secret of reset *reset_id* in force with a code it made."""
        body = build(api.TotpConfirmIn, id=reset_id, totp=totp)
        return await self._conn.fetch(api.TotpReplaced, "POST", "/v1/totp/confirm", body=body)

    async def revoke_all(self) -> api.Revoked:
        return await self._conn.fetch(api.Revoked, "DELETE", "/v1/sessions")

    async def add_credentials(
        self, service: str, fields: Mapping[str, str], *, totp: str
    ) -> api.CredentialsOut:
        """Store *fields* for *service* in the daemon's vault (the daemon runs ``check()``)."""
        body = build(api.CredentialsIn, totp=totp, fields=dict(fields))
        path = f"/v1/credentials/{segment(service)}"
        return await self._conn.fetch(api.CredentialsOut, "POST", path, body=body)

    async def list_credentials(self) -> list[dict[str, object]]:
        """Which services and notifiers have stored credentials (names only, no TOTP)."""
        listing = await self._conn.fetch(api.CredentialListing, "GET", "/v1/credentials")
        return listing.credentials

    async def get_credential(self, service: str, field: str, *, totp: str) -> api.CredentialValue:
        path = f"/v1/credentials/{segment(service)}/{segment(field)}"
        headers = {TOTP_HEADER: totp}
        return await self._conn.fetch(api.CredentialValue, "GET", path, headers=headers)

    async def remove_credentials(self, service: str, *, totp: str) -> api.CredentialsOut:
        path = f"/v1/credentials/{segment(service)}"
        headers = {TOTP_HEADER: totp}
        return await self._conn.fetch(api.CredentialsOut, "DELETE", path, headers=headers)

    async def audit(
        self,
        *,
        since: str | None = None,
        service: str | None = None,
        event: str | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> api.AuditEvents:
        """Audit events, oldest first; *since* as the daemon takes it (``"7d"`` or an ISO
        time). *limit* keeps the oldest matches, or with *newest* the newest."""
        query = {"since": since, "service": service, "event": event, "limit": limit}
        params: dict[str, object] = {k: v for k, v in query.items() if v is not None}
        if newest:
            params["newest"] = "true"
        return await self._conn.fetch(api.AuditEvents, "GET", "/v1/audit", params=params)
