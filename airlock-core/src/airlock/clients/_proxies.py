"""``airlock.gmail.list_messages(limit=10)``: services as attributes, operations as methods.

The names come from the daemon's ``GET /v1/services`` (cached by the client). Attribute
access cannot wait for the daemon, so a name is checked at once when the catalogue is
already loaded, and otherwise when the call is awaited; either way an unknown name is an
:class:`AttributeError` that lists the known ones, like a misspelt attribute of any object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airlock.api import OperationInfo, ServiceInfo

if TYPE_CHECKING:
    from airlock.clients._async_client import AirlockClient


def unknown_service(name: str, known: Iterable[str]) -> AttributeError:
    return AttributeError(
        f"Airlock has no service {name!r}; configured: {', '.join(sorted(known)) or 'none'}"
    )


def unknown_operation(service: ServiceInfo, name: str) -> AttributeError:
    known = ", ".join(sorted(op.name for op in service.operations))
    return AttributeError(f"service {service.name!r} has no operation {name!r}; it has: {known}")


def find_operation(
    catalogue: Mapping[str, ServiceInfo], service: str, operation: str
) -> OperationInfo:
    """The operation's description, or the AttributeError naming what exists."""
    if service not in catalogue:
        raise unknown_service(service, catalogue)
    info = catalogue[service]
    for op in info.operations:
        if op.name == operation:
            return op
    raise unknown_operation(info, operation)


def check_keywords(op: OperationInfo, service: str, params: Mapping[str, Any]) -> None:
    """Refuse keywords the params model does not have, as Python does for a function."""
    schema = op.params_schema
    allowed = schema.get("properties")
    if not isinstance(allowed, dict) or schema.get("additionalProperties", True) is not False:
        return
    extra = sorted(set(params) - set(allowed))
    if extra:
        takes = ", ".join(allowed) or "no parameters"
        raise TypeError(
            f"{service}.{op.name}() got unexpected keyword argument(s) {', '.join(extra)}; "
            f"it takes: {takes}"
        )


class OperationMethod:
    """``airlock.<service>.<operation>``: awaiting a call runs the operation."""

    def __init__(self, client: AirlockClient, service: str, operation: str) -> None:
        self._client = client
        self.service = service
        self.operation = operation

    def __repr__(self) -> str:
        return f"<Airlock operation {self.service}.{self.operation}>"

    async def __call__(self, **params: Any) -> Any:
        """Run the operation with *params* as its parameters; the service's result (JSON)."""
        catalogue = await self._client.catalogue()
        check_keywords(
            find_operation(catalogue, self.service, self.operation), self.service, params
        )
        out = await self._client.invoke(self.service, self.operation, params)
        return out.result


class ServiceProxy:
    """``airlock.<service>``: its operations are attributes."""

    def __init__(self, client: AirlockClient, name: str) -> None:
        self._client = client
        self.name = name

    def __repr__(self) -> str:
        return f"<Airlock service {self.name}>"

    def __getattr__(self, operation: str) -> OperationMethod:
        if operation.startswith("_"):
            raise AttributeError(operation)
        catalogue = self._client.cached_catalogue()
        if catalogue is not None:
            find_operation(catalogue, self.name, operation)
        return OperationMethod(self._client, self.name, operation)

    def __dir__(self) -> list[str]:
        catalogue = self._client.cached_catalogue() or {}
        info = catalogue.get(self.name)
        return sorted(op.name for op in info.operations) if info else []
