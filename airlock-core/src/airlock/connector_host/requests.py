"""What a request to the connector host carries, read and checked: every field the core
sends is checked here before a handler uses it (the core may be compromised too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from airlock.errors import ConnectorError, InvalidInput
from airlock.framework.connectors import Access, Connector, OperationSpec
from airlock.framework.spending import BudgetState

MAX_FIELDS = 32
MAX_FIELD_CHARS = 16 * 1024
DESCRIPTION_CHARS = 1000
"""What crosses of a write's description (``Connector.describe``); the prompt cuts more."""


def text_field(message: Mapping[str, Any], key: str, *, limit: int = 200) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidInput(f"the request needs {key!r} as text", field=key)
    return value


def count_field(message: Mapping[str, Any], key: str) -> int:
    value = message.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"the request needs {key!r} as a count", field=key)
    return value


def object_field(message: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key, {})
    if not isinstance(value, dict):
        raise InvalidInput(f"{key!r} must be an object", field=key)
    return value


def still_a_read(message: Mapping[str, Any], service: str, spec: OperationSpec) -> None:
    """A ConnectorError when the core allowed the call as a read (``access``) but the
    connector, opened again since, now lists the operation as more: the core's listing
    is older (an MCP server started again lists the tool as a write)."""
    if message.get("access") == Access.READ.value and spec.access is not Access.READ:
        raise ConnectorError(
            f"{service}.{spec.name} is listed as a {spec.access.value} now, no longer a read",
            hint="call it again: it needs the person's approval",
        )


async def described(
    connector: Connector, spec: OperationSpec, params: dict[str, Any]
) -> str | None:
    """What a write acts on, as the connector describes it (``Connector.describe``), for
    the person's prompt: only writes are described (a read's params name what the agent
    would read anyway, and it holds no session to read it yet)."""
    if spec.access is not Access.WRITE:
        raise InvalidInput(f"{spec.name} is not a write: nothing to describe", field="operation")
    text = await connector.describe(spec.name, spec.parse_params(params))
    if text is not None and not isinstance(text, str):
        raise ConnectorError(f"{connector.name}.describe gave {type(text).__name__}, not text")
    return text[:DESCRIPTION_CHARS] if text else None


def forget(running: dict[int, Any], rid: int, _: object) -> None:
    """A finished request's task leaves the running ones (a done callback)."""
    running.pop(rid, None)


def listed_spec(spec: OperationSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "access": spec.access.value,
        "description": spec.description,
        "input_schema": spec.params_schema(),
        "destructive": spec.destructive,
    }


def result_json(result: BaseModel) -> dict[str, Any]:
    return result.model_dump(mode="json", by_alias=True)


def credential_fields(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw or len(raw) > MAX_FIELDS:
        raise InvalidInput(f"credentials are 1 to {MAX_FIELDS} fields", field="fields")
    fields: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > MAX_FIELD_CHARS:
            raise InvalidInput("a credential field is text of at most 16 KiB", field="fields")
        fields[key] = value
    return fields


def budget_state(raw: Any) -> BudgetState | None:
    if not isinstance(raw, dict):
        return None
    try:
        return BudgetState(
            limit_nano=int(raw["limit_nano"]),
            spent_nano=int(raw.get("spent_nano", 0)),
            reserved_nano=int(raw.get("reserved_nano", 0)),
        )
    except (KeyError, TypeError, ValueError):
        return None
