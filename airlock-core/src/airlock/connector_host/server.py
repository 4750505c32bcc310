"""The connector host's side of the channel: runs operations, keeps the credentials.

The host holds the service credentials' vault (and its own key) and every open
connector; it never sees the TOTP secret, the audit key, a session token or the state
database. It answers the core's requests (see :mod:`.protocol`) concurrently, each in its
own task, so one slow service does not hold up another; a request the core cancels (its
timeout passed, the agent went away) is cancelled here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel

from airlock.common.logs import get_logger
from airlock.common.loop import give_way
from airlock.connector_host.credential_requests import CredentialRequests
from airlock.connector_host.keys import HostKeys
from airlock.connector_host.pool import ConnectorPool, OpenConnector
from airlock.connector_host.protocol import (
    ANSWERS_PER_WRITE,
    MAX_ANSWER_BYTES,
    MAX_REQUEST_BYTES,
    ChannelBroken,
    FrameReader,
    Outbox,
    encode_error,
    frame,
)
from airlock.connector_host.requests import (
    budget_state,
    count_field,
    described,
    forget,
    listed_spec,
    object_field,
    result_json,
    still_a_read,
    text_field,
)
from airlock.errors import (
    AirlockError,
    ConfigError,
    ConnectorError,
    InvalidInput,
    NotFound,
    VaultError,
)
from airlock.framework.connectors import CheckResult, Connector, OperationSpec
from airlock.framework.spending import (
    Charge,
    Meter,
    PricedConnector,
    budget_in_force,
    current_budget,
    nano_usd,
)
from airlock.gateway.services import Service
from airlock.passphrase import WrongPassphrase, key_from
from airlock.security.vault import Vault

__all__ = ["HostServer"]

log = get_logger("airlock.connector_host")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class HostServer:
    def __init__(self, connectors: Mapping[str, type[Connector]], keys: HostKeys) -> None:
        self.connectors = dict(connectors)
        self.keys = keys
        self.vault = Vault(keys.vault_file, keys.load())
        self.services: dict[str, Service] = {}
        self.credentials = CredentialRequests(self)
        self.pool = ConnectorPool(self.services, self.credentials.stored_for)
        self.timeout = 30.0
        self._handlers: dict[str, Handler] = {
            "configure": self._configure,
            "call": self._call,
            "listed": self._listed,
            "describe": self._describe,
            "check": self._check,
            "set_credentials": self.credentials.set,
            "get_credential": self.credentials.get,
            "remove_credentials": self.credentials.remove,
            "stored": self.credentials.stored,
            "discard": self._discard,
            "close_idle": self._close_idle,
            "unlock": self._unlock,
            "lock": self._lock,
            "ping": self._ping,
        }

    # -- the channel -----------------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the requests on one connection until it closes (or breaks the rules)."""
        running: dict[int, asyncio.Task[None]] = {}
        outbox = Outbox(writer, per_write=ANSWERS_PER_WRITE)
        loop = asyncio.get_running_loop()
        frames = FrameReader(reader, MAX_REQUEST_BYTES)
        try:
            while True:
                message = await frames.next()
                if message.get("kind") == "cancel":
                    task = running.get(message.get("target"))  # type: ignore[arg-type]
                    if task is not None:
                        task.cancel()
                    continue
                rid = message.get("id")
                if not isinstance(rid, int) or isinstance(rid, bool) or rid <= 0:
                    raise ChannelBroken("a request without a valid id")
                if rid in running:
                    raise ChannelBroken(f"request id {rid} is already running")
                task = loop.create_task(self._answer(rid, message, outbox))
                running[rid] = task
                task.add_done_callback(functools.partial(forget, running, rid))
        except ChannelBroken as exc:
            if str(exc) != "the channel closed":
                log.warning("connector_host_channel_broken", reason=str(exc))
        finally:
            for task in list(running.values()):
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)
            outbox.flush()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, rid: int, message: dict[str, Any], outbox: Outbox) -> None:
        kind = message.get("kind")
        try:
            if kind == "priced":
                first = True
                async for item in self._priced(message):
                    await self._send(outbox, {"id": rid, **item})
                    if "chunk" not in item:
                        continue
                    if first:
                        # The first chunk goes at once, not at the end of the turn: the
                        # connector may go on parsing what the service already sent, and
                        # the agent is waiting for it. The quote waits for the end of the
                        # turn (by then the call is on its way to the service), and later
                        # chunks of one turn go together: the core wakes once for them.
                        outbox.flush()
                        first = False
                    # The core and the agent go first while this parses the rest of a
                    # burst: on a busy machine the agent waits for a CPU behind it.
                    give_way()
                await self._send(outbox, {"id": rid, "ok": {}})
                return
            handler = self._handlers.get(kind) if isinstance(kind, str) else None
            if handler is None:
                raise InvalidInput("unknown request kind", field="kind")
            await self._send(outbox, {"id": rid, "ok": await handler(message)})
        except asyncio.CancelledError:
            raise
        except AirlockError as exc:
            await self._send(outbox, {"id": rid, "error": encode_error(exc)})
        except Exception as exc:
            # An unexpected failure says only its type: a message may quote a secret.
            log.error("connector_host_request_failed", kind=kind, error=type(exc).__name__)
            error = ConnectorError(f"the connector host failed: {type(exc).__name__}")
            await self._send(outbox, {"id": rid, "error": encode_error(error)})

    async def _send(self, outbox: Outbox, message: dict[str, Any]) -> None:
        try:
            data = frame(message, MAX_ANSWER_BYTES)
        except ValueError:
            error = ConnectorError(
                "the service's answer is over the connector host's 16 MiB limit",
                hint="ask for less (a smaller limit or page)",
            )
            data = frame({"id": message["id"], "error": encode_error(error)}, MAX_ANSWER_BYTES)
        outbox.put(data)
        if outbox.writer.transport.get_write_buffer_size():
            with contextlib.suppress(ConnectionError):
                await outbox.writer.drain()  # what earlier turns wrote: a stream waits for room

    # -- configuration and lifecycle ---------------------------------------------------

    async def _configure(self, message: dict[str, Any]) -> dict[str, Any]:
        """The services (name → connector id and raw settings) and the timeout, as the
        core's config says; connectors of the previous configuration are closed."""
        services: dict[str, Service] = {}
        for name, entry in object_field(message, "services").items():
            if not isinstance(entry, dict):
                raise ConfigError(f"service {name!r}: not an object")
            cls = self.connectors.get(str(entry.get("connector")))
            if cls is None:
                raise ConfigError(
                    f"service {name!r} uses connector {entry.get('connector')!r}, "
                    "which the connector host does not have installed",
                    hint="install the same airlock packages for the connector host",
                )
            settings = object_field(entry, "settings")
            services[name] = Service(name, cls, cls.parse_settings(settings, service=name))
        timeout = message.get("timeout", self.timeout)
        if isinstance(timeout, int | float) and timeout > 0:
            self.timeout = float(timeout)
        old = self.pool
        self.services.clear()
        self.services.update(services)
        self.pool = ConnectorPool(self.services, self.credentials.stored_for)
        await old.close_all()
        return {"services": sorted(services), "locked": self.vault.locked}

    async def _ping(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "locked": self.vault.locked}

    async def _unlock(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.vault.locked:
            key = key_from(text_field(message, "passphrase", limit=1024))
            try:
                opened = await asyncio.to_thread(self.keys.unlock, key)
            except VaultError:
                raise WrongPassphrase("wrong passphrase for the connector host's key") from None
            self.vault.unlock(opened)
        return {"locked": False}

    async def _lock(self, message: dict[str, Any]) -> dict[str, Any]:
        """Forget the key (the passphrase lock was turned on while running)."""
        if self.keys.sealed:
            await self.pool.close_all()
            self.vault.lock()
        return {"locked": self.vault.locked}

    async def _discard(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.pool.discard(text_field(message, "service"))
        return {}

    async def _close_idle(self, message: dict[str, Any]) -> dict[str, Any]:
        keep = message.get("keep", [])
        idle = message.get("idle_seconds", 300)
        if not isinstance(keep, list) or not isinstance(idle, int | float):
            raise InvalidInput("close_idle needs keep (a list) and idle_seconds")
        closed = await self.pool.close_idle(keep={str(k) for k in keep}, idle_seconds=idle)
        return {"closed": closed}

    # -- operations --------------------------------------------------------------------

    def _service(self, message: Mapping[str, Any]) -> Service:
        name = text_field(message, "service", limit=64)
        service = self.services.get(name)
        if service is None:
            raise NotFound(f"no service named {name!r}")
        return service

    async def _take(
        self, message: Mapping[str, Any]
    ) -> tuple[Service, OpenConnector, OperationSpec, dict[str, Any]]:
        """The call's service, its connector (in use until given back to the pool: see
        ``ConnectorPool.take``), the operation and the raw params."""
        service = self._service(message)
        operation = text_field(message, "operation", limit=64)
        entry = await self.pool.take(service.name)
        try:
            spec = entry.connector.operation_spec(operation)
            return service, entry, spec, object_field(message, "params")
        except BaseException:
            await self.pool.give_back(service.name, entry)
            raise

    @contextlib.asynccontextmanager
    async def _operation(
        self, message: Mapping[str, Any]
    ) -> AsyncIterator[tuple[Service, Connector, OperationSpec, dict[str, Any]]]:
        """:meth:`_take` for the block's length."""
        service, entry, spec, params = await self._take(message)
        try:
            yield service, entry.connector, spec, params
        finally:
            await self.pool.give_back(service.name, entry)

    async def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        # Most requests are this: :meth:`_operation` without its context manager's cost.
        service, entry, spec, params = await self._take(message)
        try:
            still_a_read(message, service.name, spec)
            result = await self._result(service, entry.connector, spec, params, message)
        finally:
            await self.pool.give_back(service.name, entry)
        return {"result": result_json(result)}

    async def _result(
        self,
        service: Service,
        connector: Connector,
        spec: OperationSpec,
        params: dict[str, Any],
        message: Mapping[str, Any],
    ) -> BaseModel:
        """The operation's result, run with the session's budget the request carries; a
        connector that failed is closed (the next call opens it again)."""
        try:
            budget = budget_state(message.get("budget"))
            if budget is None and current_budget() is None:
                return await connector.call(spec.name, params)  # no context manager's cost
            with budget_in_force(budget):
                return await connector.call(spec.name, params)
        except ConnectorError:
            await self.pool.discard(service.name, connector)
            raise
        except AirlockError:
            raise
        except Exception as exc:
            await self.pool.discard(service.name, connector)
            raise ConnectorError(
                f"{service.name}.{spec.name} failed: {type(exc).__name__}"
            ) from None

    async def _priced(self, message: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """A spend call in one request: its quote first; then, only if the quote is within
        ``ceiling_nano`` (what the core holds for it), the call itself: its chunks, meter
        readings and charge (``streamed``), or its result and charge."""
        async with self._operation(message) as (service, connector, spec, params):
            if not isinstance(connector, PricedConnector):
                raise ConnectorError(f"{service.name}.{spec.name} spends money but has no prices")
            ceiling = count_field(message, "ceiling_nano")
            parsed = spec.parse_params(params)
            quote = await connector.quote(spec.name, parsed)
            yield {"quote": quote.model_dump(mode="json")}
            reserved = nano_usd(quote.usd)
            if reserved > ceiling:
                return  # over what the core holds: nothing is sent, the core refuses the call
            if not message.get("streamed"):
                result = await self._result(service, connector, spec, params, message)
                answer: dict[str, Any] = {"result": result_json(result)}
                try:
                    answer["charge"] = connector.charge(spec.name, parsed, result).model_dump(
                        mode="json"
                    )
                except Exception as exc:  # a broken report must not lose the result
                    answer["charge_error"] = type(exc).__name__
                yield answer
                return
            items = connector.stream(spec.name, parsed)
            try:
                async for item in items:
                    if isinstance(item, Charge):
                        yield {"charge": item.model_dump(mode="json")}
                    elif isinstance(item, Meter):
                        # The core cuts a stream whose reading passes its reservation (the
                        # quote): only such a reading is news to it, the rest stay here.
                        if nano_usd(item.usd) > reserved:
                            yield {"meter": item.model_dump(mode="json")}
                    else:
                        yield {"chunk": item}
            finally:
                close = getattr(items, "aclose", None)
                if close is not None:
                    await close()

    async def _describe(self, message: dict[str, Any]) -> dict[str, Any]:
        async with self._operation(message) as (_, connector, spec, params):
            return {"description": await described(connector, spec, params)}

    async def _listed(self, message: dict[str, Any]) -> dict[str, Any]:
        service = self._service(message)
        listed = await self.pool.listed(service.name)
        return {"operations": [listed_spec(spec) for spec in listed.values()]}

    async def _check(self, message: dict[str, Any]) -> dict[str, Any]:
        """``check()`` on a fresh connector with the stored credentials."""
        result = await self.probe(self.pool.connector(self._service(message).name))
        return {"check": result.model_dump(mode="json")}

    async def probe(self, connector: Connector) -> CheckResult:
        """Open *connector*, run its ``check()`` and close it, each within the timeout."""
        try:
            await asyncio.wait_for(connector.open(), self.timeout)
            return await asyncio.wait_for(connector.check(), self.timeout)
        finally:
            with contextlib.suppress(Exception):
                await connector.close()
