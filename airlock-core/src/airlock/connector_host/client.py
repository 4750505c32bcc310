"""The connector host as the core sees it: operations, listed operations, credentials.

The core knows each service's connector *class* (its operations, params and result
models) but never holds an open connector or a service credential: every call goes to
the host, and what comes back is validated here again against the operation's result
model before any filter or the agent sees it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from airlock.connector_host.link import HostLink
from airlock.errors import ConnectorError, NotFound
from airlock.framework.connectors import Access, OperationSpec, listed_operation
from airlock.framework.spending import BudgetState, Charge, Meter, Quote
from airlock.gateway.services import Service

__all__ = ["ConnectorHost", "PricedAnswer", "PricedItem"]


class PricedAnswer:
    """A spend call's result with what the connector said it cost."""

    def __init__(self, result: BaseModel, charge: Charge | None, charge_error: str | None):
        self.result = result
        self.charge = charge
        self.charge_error = charge_error


def _budget(state: BudgetState | None) -> dict[str, int] | None:
    if state is None:
        return None
    return {
        "limit_nano": state.limit_nano,
        "spent_nano": state.spent_nano,
        "reserved_nano": state.reserved_nano,
    }


PricedItem = Quote | dict[str, Any] | Meter | Charge | PricedAnswer
"""What a priced call's request yields (see :meth:`ConnectorHost.priced`)."""


def _list(answer: Mapping[str, Any], key: str) -> list[Any]:
    """The list the host answered under *key* (missing: empty); any other shape is the
    host breaking the protocol, a service error, not a TypeError here."""
    found = answer.get(key, [])
    if not isinstance(found, list):
        raise ConnectorError(f"the connector host sent a malformed answer ({key})")
    return found


def _object(answer: Mapping[str, Any], key: str) -> dict[str, Any]:
    found = answer.get(key) or {}
    if not isinstance(found, dict):
        raise ConnectorError(f"the connector host sent a malformed answer ({key})")
    return found


def _model(model: type[BaseModel], data: Any, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise ConnectorError(f"{what} did not match its model; nothing was passed on") from None


def _priced_answer(spec: OperationSpec, message: Mapping[str, Any], what: str) -> PricedAnswer:
    result: BaseModel = _model(spec.result, message.get("result"), f"{what}'s result")
    charge, error = message.get("charge"), message.get("charge_error")
    try:
        found = Charge.model_validate(charge) if charge is not None else None
    except ValidationError:
        found, error = None, "MalformedCharge"
    return PricedAnswer(result, found, str(error)[:80] if error else None)


class ConnectorHost:
    def __init__(self, link: HostLink, services: Mapping[str, Service]) -> None:
        self.link = link
        self.services = services
        self._listed: dict[str, dict[str, OperationSpec]] = {}
        """Operations each listing service's connector listed when it last opened."""

    # -- what a service offers -----------------------------------------------------------

    async def listed(self, name: str) -> dict[str, OperationSpec]:
        """The operations service *name* lists when it opens (asking the host once)."""
        service = self.services[name]
        if not service.connector.lists_operations:
            return {}
        if name not in self._listed:
            answer = await self.link.request("listed", service=name)
            found: dict[str, OperationSpec] = {}
            for item in _list(answer, "operations")[:1000]:
                try:
                    spec = listed_operation(
                        name=item["name"],
                        access=Access(item["access"]),
                        input_schema=item["input_schema"],
                        result=service.connector.listed_result,
                        description=str(item.get("description", "")),
                        destructive=bool(item.get("destructive", False)),
                    )
                except (KeyError, TypeError, ValueError):
                    continue  # the host listed something that is not an operation
                if spec.name not in service.connector.operations:
                    found[spec.name] = spec
            self._listed[name] = found
        return self._listed[name]

    async def spec(self, service: Service, operation: str) -> OperationSpec:
        """The service's operation *operation*: declared, or listed when it opened."""
        cls = service.connector
        if cls.lists_operations and operation not in cls.operations:
            found = (await self.listed(service.name)).get(operation)
            if found is not None:
                return found
        return cls.spec(operation)

    # -- running operations --------------------------------------------------------------

    async def call(
        self,
        service: str,
        spec: OperationSpec,
        params: Mapping[str, Any],
        *,
        budget: BudgetState | None = None,
    ) -> BaseModel:
        """The operation's result, validated again here. The host is told the access
        it was allowed as, and refuses a call its connector now lists as more (a server
        started again that lists the tool as a write); a failed call forgets what the
        service listed, so the next one asks it again."""
        try:
            answer = await self.link.request(
                "call",
                service=service,
                operation=spec.name,
                params=dict(params),
                budget=_budget(budget),
                access=spec.access.value,
            )
        except ConnectorError:
            self._listed.pop(service, None)
            raise
        result: BaseModel = _model(
            spec.result, answer.get("result"), f"{service}.{spec.name}'s result"
        )
        return result

    async def priced(
        self,
        service: str,
        spec: OperationSpec,
        params: Mapping[str, Any],
        *,
        ceiling_nano: int,
        streamed: bool,
        budget: BudgetState | None = None,
    ) -> AsyncIterator[PricedItem]:
        """A spend call in one request: its :class:`Quote` first; then nothing if that is
        over *ceiling_nano* (the call was not sent), else the streamed call's chunks (JSON
        objects), meter readings and charge, or the call's :class:`PricedAnswer`."""
        what = f"{service}.{spec.name}"
        frames = self.link.stream(
            "priced",
            service=service,
            operation=spec.name,
            params=dict(params),
            ceiling_nano=ceiling_nano,
            streamed=streamed,
            budget=_budget(budget),
            at_once=streamed,
        )
        try:
            async for message in frames:
                if "quote" in message:
                    yield _model(Quote, message["quote"], f"{what}'s quote")
                elif "result" in message:
                    yield _priced_answer(spec, message, what)
                elif isinstance(message.get("chunk"), dict):
                    yield message["chunk"]
                elif "meter" in message:
                    yield _model(Meter, message["meter"], "a meter reading")
                elif "charge" in message:
                    yield _model(Charge, message["charge"], "the call's charge")
        finally:
            await frames.aclose()

    async def describe(
        self, service: Service, spec: OperationSpec, params: Mapping[str, Any]
    ) -> str | None:
        """What the write *spec* with *params* acts on, in the service's words (its
        connector's ``describe``), for the person's prompt only; None: nothing to say.
        Bounded by the host's timeout; a failure is raised, like a call's."""
        answer = await self.link.request(
            "describe", service=service.name, operation=spec.name, params=dict(params)
        )
        found = answer.get("description")
        if found is not None and not isinstance(found, str):
            raise ConnectorError("the connector host sent a malformed answer (description)")
        return found or None

    async def check(self, service: str) -> dict[str, Any]:
        answer = await self.link.request("check", service=service)
        return _object(answer, "check")

    async def discard(self, service: str) -> None:
        """Close the service's open connector (new credentials, a failed call)."""
        self._listed.pop(service, None)
        if self.link.connected:
            await self.link.request("discard", service=service)

    async def close_idle(self, *, keep: set[str], idle_seconds: float) -> list[str]:
        if not self.link.connected:
            return []
        answer = await self.link.request("close_idle", keep=sorted(keep), idle_seconds=idle_seconds)
        return [str(name) for name in _list(answer, "closed")]

    # -- credentials (they never stay in the core) ------------------------------------

    async def set_credentials(
        self, service: str, fields: Mapping[str, str], *, check: bool = True
    ) -> dict[str, Any] | None:
        """Store *fields* for *service* in the host's vault (after a check with them)."""
        answer = await self.link.request(
            "set_credentials", service=service, fields=dict(fields), check=check
        )
        self._listed.pop(service, None)
        check_result = answer.get("check")
        return dict(check_result) if isinstance(check_result, dict) else None

    async def get_credential(self, service: str, field: str) -> str:
        answer = await self.link.request("get_credential", service=service, field=field)
        value = answer.get("value")
        if not isinstance(value, str):
            raise NotFound(f"no credential field {field[:40]!r} for {service}")
        return value

    async def remove_credentials(self, service: str) -> list[str]:
        answer = await self.link.request("remove_credentials", service=service)
        self._listed.pop(service, None)
        return [str(f) for f in _list(answer, "fields")]

    async def stored(self) -> dict[str, list[str]]:
        """Services with credentials in the host's vault, and their fields' names."""
        answer = await self.link.request("stored")
        services = _object(answer, "services")
        return {str(n): [str(f) for f in _list(services, n)] for n in services}
