"""Storing, reading and removing credentials, each after the person's code.

A service's credentials go to the connector host's vault and are forgotten here; only a
notifier's (a bot token) stay in the core's own vault, since notifiers run in the core.
Every action is checked through the one audited code check and recorded after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airlock.api import CredentialsOut
from airlock.common.logs import get_logger
from airlock.errors import NotFound
from airlock.framework.notifiers import Notice
from airlock.security.code_checks import CodePurpose
from airlock.security.peers import Peer

if TYPE_CHECKING:
    from airlock.daemon.runtime import Runtime

log = get_logger("airlock.daemon")


REJECTED_NOTICE_INTERVAL = 600.0


class CredentialDesk:
    """The daemon's credential actions (``airlock credentials …``, the dashboard)."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._rejected_at: dict[str, float] = {}

    async def rejected(self, service: str) -> None:
        """Tell the person (every channel, at most once in REJECTED_NOTICE_INTERVAL a
        service) that a service refused the credentials stored for it."""
        rt = self._rt
        now = rt.clock.now()
        if now - self._rejected_at.get(service, -REJECTED_NOTICE_INTERVAL) < (
            REJECTED_NOTICE_INTERVAL
        ):
            return
        self._rejected_at[service] = now
        await rt.audit.append("credentials_rejected", service=service)
        text = (
            f"Airlock: {service} refused the credentials stored for it. "
            f"Store valid ones with `airlock credentials add {service}`."
        )
        # Sent in the background: the agent's answer need not wait.
        rt.in_background(rt.channels.notify_all(Notice(text=text)))

    def _is_service(self, name: str) -> bool:
        """Whether *name* is a configured service (else a notifier, or unknown)."""
        rt = self._rt
        if name in rt.services:
            return True
        if name in rt.notifiers or name in rt.config.notifiers or name in rt.installed_notifiers:
            return False
        raise NotFound(f"no service or notifier named {name[:40]!r}")

    async def _check_code(self, code: str, peer: Peer, purpose: CodePurpose) -> None:
        self._rt.refresh_totp()
        await self._rt.codes.check(
            code, channel="terminal", purpose=purpose, actor=peer.audit_fields()
        )

    async def set(
        self, name: str, totp_code: str, fields: dict[str, str], peer: Peer
    ) -> CredentialsOut:
        rt = self._rt
        is_service = self._is_service(name)
        await self._check_code(totp_code, peer, CodePurpose.credential("set_credentials", name))
        check: dict[str, Any] | None = None
        if is_service:
            check = await rt.gateway.host.set_credentials(name, fields)
            rt.gateway.auth_problems.pop(name, None)
        else:
            rt.vault.set(name, fields)
        await rt.audit.append(
            "credentials_changed",
            **peer.audit_fields(),
            service=name,
            fields=sorted(fields),
            action="set",
        )
        return CredentialsOut(service=name, fields=sorted(fields), check=check)

    async def get(self, name: str, field: str, totp_code: str, peer: Peer) -> str:
        rt = self._rt
        is_service = self._is_service(name)
        purpose = CodePurpose.credential("read_credential", name, field)
        await self._check_code(totp_code, peer, purpose)
        if is_service:
            value = await rt.gateway.host.get_credential(name, field)
        else:
            stored = rt.vault.get(name) if rt.vault.has(name) else {}
            if field not in stored:
                raise NotFound(f"no credential field {field[:40]!r} for {name}")
            value = stored[field]
        await rt.audit.append("credentials_read", **peer.audit_fields(), service=name, field=field)
        return value

    async def remove(self, name: str, totp_code: str, peer: Peer) -> CredentialsOut:
        rt = self._rt
        is_service = self._is_service(name)
        purpose = CodePurpose.credential("remove_credentials", name)
        await self._check_code(totp_code, peer, purpose)
        if is_service:
            fields = await rt.gateway.host.remove_credentials(name)
        else:
            if not rt.vault.has(name):
                raise NotFound(f"no credentials stored for {name}")
            fields = sorted(rt.vault.get(name))
            rt.vault.remove(name)
        await rt.audit.append(
            "credentials_changed",
            **peer.audit_fields(),
            service=name,
            fields=fields,
            action="remove",
        )
        return CredentialsOut(service=name, fields=[])

    async def stored_fields(self) -> dict[str, list[str]]:
        """Every name with stored credentials and its fields' names (never the values)."""
        rt = self._rt
        rt.refresh_totp()
        if not rt.verifier.enrolled:
            return {}
        found: dict[str, list[str]] = {}
        if not rt.vault.locked:
            found = {n: sorted(rt.vault.get(n)) for n in rt.vault.services()}
        found.update(await rt.gateway.host.stored())
        return found

    async def listing(self) -> list[dict[str, Any]]:
        rt = self._rt
        stored = set(await self.stored_fields())
        # Only what takes credentials: a Maildir or the console has nothing to store.
        wanted = {
            n
            for n, svc in rt.services.items()
            if svc.connector.credentials_model(svc.settings).model_fields
        }
        wanted |= {n for n, ntf in rt.notifiers.items() if type(ntf).Credentials.model_fields}
        names = sorted(wanted | stored)
        return [{"service": n, "stored": n in stored} for n in names]

    async def move_service_credentials(self) -> list[str]:
        """Move service credentials an older release kept in the core's vault to the
        connector host's (once, at start or unlock); the core keeps only notifiers'."""
        rt = self._rt
        if rt.vault.locked or not rt.vault.exists():
            return []
        moved = []
        for name in rt.vault.services():
            if name in rt.installed_notifiers or name in rt.config.notifiers:
                continue
            await rt.gateway.host.set_credentials(name, rt.vault.get(name), check=False)
            rt.vault.remove(name)
            moved.append(name)
        if moved:
            await rt.audit.append("credentials_moved", services=moved, to="connector host")
            log.info("credentials_moved_to_connector_host", services=len(moved))
        return moved
