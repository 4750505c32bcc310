"""The connector host's answers about service credentials: kept in its vault, checked
with the service before they are stored; what goes back is their fields' names, and a
field's value only to ``get_credential`` (the person's own command, through the core)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airlock.connector_host.requests import credential_fields, text_field
from airlock.errors import NotFound

if TYPE_CHECKING:
    from airlock.connector_host.server import HostServer

__all__ = ["CredentialRequests"]


class CredentialRequests:
    def __init__(self, host: HostServer) -> None:
        self._host = host

    def stored_for(self, service: str) -> Mapping[str, str]:
        return self._host.vault.get(service) if self._host.vault.has(service) else {}

    async def set(self, message: dict[str, Any]) -> dict[str, Any]:
        """Store a service's credentials after a ``check()`` with them passes (or, with
        ``check: false``, as they are: moving them from an older vault)."""
        name = text_field(message, "service", limit=64)
        fields = credential_fields(message.get("fields"))
        check: dict[str, Any] | None = None
        service = self._host.services.get(name)
        if message.get("check", True):
            if service is None:
                raise NotFound(f"no service named {name!r}")
            credentials = service.connector.parse_credentials(fields, service=name)
            connector = service.connector(service.settings, credentials, service=name)
            check = (await self._host.probe(connector)).model_dump()
        await asyncio.to_thread(self._host.vault.set, name, fields)
        await self._host.pool.discard(name)
        return {"fields": sorted(fields), "check": check}

    async def get(self, message: dict[str, Any]) -> dict[str, Any]:
        name = text_field(message, "service", limit=64)
        field = text_field(message, "field", limit=64)
        stored = self.stored_for(name)
        if field not in stored:
            raise NotFound(f"no credential field {field[:40]!r} for {name}")
        return {"value": stored[field]}

    async def remove(self, message: dict[str, Any]) -> dict[str, Any]:
        name = text_field(message, "service", limit=64)
        if not self._host.vault.has(name):
            raise NotFound(f"no credentials stored for {name}")
        fields = sorted(self._host.vault.get(name))
        await asyncio.to_thread(self._host.vault.remove, name)
        await self._host.pool.discard(name)
        return {"fields": fields}

    async def stored(self, message: dict[str, Any]) -> dict[str, Any]:
        """Which services have credentials, and the fields' names (never their values)."""
        if self._host.vault.locked:
            return {"locked": True, "services": {}}
        names = self._host.vault.services()
        return {"locked": False, "services": {n: sorted(self._host.vault.get(n)) for n in names}}
