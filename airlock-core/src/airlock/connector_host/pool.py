"""Open connectors, one per service while sessions use it (in the connector host)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from airlock.errors import ConnectorError
from airlock.framework.connectors import Connector, OperationSpec
from airlock.gateway.services import Service

CredentialsFor = Callable[[str], Mapping[str, str]]


@dataclass(eq=False)
class OpenConnector:
    """A service's open connector in the pool, and the calls using it."""

    connector: Connector
    last_used: float
    calls: int = 0
    """Calls running on it now."""
    retired: bool = False
    """Replaced (new credentials, a failed call): closed when its last call ends."""
    closed: bool = False


class ConnectorPool:
    """One open connector per service while sessions use it; closed when idle."""

    def __init__(self, services: Mapping[str, Service], credentials_for: CredentialsFor) -> None:
        self._services = services
        self._credentials_for = credentials_for
        self._open: dict[str, OpenConnector] = {}
        self._retiring: dict[str, set[OpenConnector]] = {}
        """Retired connectors calls still run on, by service: closing the service (the
        vault locked, no session covering it) closes them too."""
        self._changes: dict[str, int] = {}
        """Per service, how often its connector was retired or closed: one that changed
        while a connector opened (with the credentials of then) is not kept."""
        self._closings = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._listed: dict[str, dict[str, OperationSpec]] = {}
        """Operations each service's connector listed when it last opened (kept after it
        closes, so listing services does not start it again)."""

    def connector(self, name: str) -> Connector:
        """A new, unopened connector for service *name* with its stored credentials."""
        service = self._services[name]
        credentials = service.connector.parse_credentials(self._credentials_for(name), service=name)
        return service.connector(service.settings, credentials, service=name)

    async def take(self, name: str) -> OpenConnector:
        """Service *name*'s open connector (opened the first time) for one call, in use
        until :meth:`give_back`: a connector retired meanwhile is closed when its last
        call ends, not under it."""
        entry = await self._entry(name)
        entry.calls += 1
        return entry

    async def give_back(self, name: str, entry: OpenConnector) -> None:
        entry.calls -= 1
        entry.last_used = time.monotonic()
        if entry.retired and not entry.calls:
            await self._close(name, entry)

    async def get(self, name: str) -> Connector:
        return (await self._entry(name)).connector

    async def _entry(self, name: str) -> OpenConnector:
        entry = self._open.get(name)
        if entry is not None:  # open already: nothing to wait for
            entry.last_used = time.monotonic()
            return entry
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            entry = self._open.get(name)
            if entry is None:
                stamp = self._stamp(name)
                connector = self.connector(name)
                await connector.open()
                try:
                    listed = await connector.discover()
                    if self._stamp(name) != stamp:
                        # Its credentials were replaced or removed, the vault locked or no
                        # session covers it any more while it opened: not for this call
                        # nor the next.
                        raise ConnectorError(
                            f"service {name!r} changed while its connector opened; try again"
                        )
                except BaseException:
                    with contextlib.suppress(Exception):
                        await connector.close()
                    raise
                self._listed[name] = listed
                entry = self._open[name] = OpenConnector(connector, time.monotonic())
            entry.last_used = time.monotonic()
            return entry

    def _stamp(self, name: str) -> tuple[int, int]:
        return self._closings, self._changes.get(name, 0)

    def _changed(self, name: str) -> None:
        self._changes[name] = self._changes.get(name, 0) + 1

    async def listed(self, name: str) -> dict[str, OperationSpec]:
        """The operations service *name* lists at open (opening it the first time)."""
        if self._services[name].connector.lists_operations and name not in self._listed:
            await self.get(name)
        return self._listed.get(name, {})

    async def close_idle(self, *, keep: set[str], idle_seconds: float) -> list[str]:
        """Close connectors of services no active session covers (at once, calls running
        on them or not), and those no call has used for a while."""
        closed = []
        now = time.monotonic()
        for name in sorted((set(self._locks) | set(self._retiring)) - keep):
            self._changed(name)  # one opening now is not kept
            if self._retiring.get(name) and name not in self._open:
                await self._close_service(name)
                closed.append(name)
        for name, entry in list(self._open.items()):
            if name not in keep:
                await self._close_service(name)
            elif now - entry.last_used > idle_seconds and not entry.calls:
                await self.discard(name)
            else:
                continue
            closed.append(name)
        return closed

    async def discard(self, name: str, failed: Connector | None = None) -> None:
        """Retire service *name*'s connector (its next call opens a new one); closed now,
        or when the calls running on it end. With *failed* (a call's failure), only that
        connector: one already replaced, or opening, is left alone."""
        if failed is not None:
            current = self._open.get(name)
            if current is None or current.connector is not failed:
                return
        self._changed(name)  # one opening now is not kept
        entry = self._open.pop(name, None)
        if entry is not None:
            entry.retired = True
            if entry.calls:
                self._retiring.setdefault(name, set()).add(entry)
            else:
                await self._close(name, entry)

    async def close_all(self) -> None:
        """Close every connector now, calls running on them or not, retired ones too (the
        vault locked); one opening now is not kept."""
        self._closings += 1
        for name in sorted(set(self._open) | set(self._retiring)):
            await self._close_service(name)

    async def _close_service(self, name: str) -> None:
        """Close service *name*'s connector and the retired ones its calls still run on."""
        entry = self._open.pop(name, None)
        for retired in [*self._retiring.get(name, ()), *([entry] if entry else [])]:
            await self._close(name, retired)

    async def _close(self, name: str, entry: OpenConnector) -> None:
        retiring = self._retiring.get(name)
        if retiring is not None:
            retiring.discard(entry)
            if not retiring:
                del self._retiring[name]
        if entry.closed:
            return
        entry.retired = entry.closed = True
        # Closing must never take the host down; the connection is dropped anyway.
        with contextlib.suppress(Exception):
            await entry.connector.close()
