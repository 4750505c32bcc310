"""The JSON shapes of the MCP tools: what a result looks like (``outputSchema``), the
non-error answer "still waiting for the person", and the input of alias and write tools.

MCP clients validate ``structuredContent`` against ``outputSchema``, so each schema here
describes exactly what :mod:`airlock.mcp.tools` returns.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from airlock.client import StillPending

REASON_ARG = "reason"
REASON_SCHEMA = {
    "type": "string",
    "maxLength": 1000,
    "description": "Why you make this change, in a sentence the person reads when approving.",
}

PENDING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"const": "pending"},
        "request": {"type": "string"},
        "fingerprint": {"type": "string"},
        "expires_at": {"type": "string"},
        "note": {"type": "string"},
    },
    "required": ["status", "request", "fingerprint", "note"],
}


def pending_result(waiting: StillPending) -> dict[str, Any]:
    """Not an error: the person has not answered yet, and calling again keeps waiting."""
    return {
        "status": "pending",
        "request": waiting.request_code,
        "fingerprint": waiting.fingerprint,
        "expires_at": waiting.expires_at.isoformat(),
        "note": (
            f"The person has not approved request {waiting.request_code} yet (fingerprint "
            f"{waiting.fingerprint}). Tell them it is waiting: they answer the prompt on "
            f"their phone or run `airlock approve {waiting.request_code}`. Then call this "
            "tool again with the same arguments: it resumes the same request."
        ),
    }


def output_schema(result_schema: Mapping[str, Any]) -> dict[str, Any]:
    """A service tool's result (the service's data labelled as untrusted) or "pending"."""
    result = copy.deepcopy(dict(result_schema))
    defs = result.pop("$defs", None)
    result.pop("title", None)
    wrapped = {
        "type": "object",
        "properties": {
            "untrusted_content_from": {"type": "string"},
            "operation": {"type": "string"},
            "note": {"type": "string"},
            "result": result or {},
        },
        "required": ["untrusted_content_from", "operation", "note", "result"],
    }
    schema: dict[str, Any] = {"type": "object", "anyOf": [wrapped, PENDING_SCHEMA]}
    if defs:
        schema["$defs"] = defs  # refs are "#/$defs/...": they must stay at the top
    return schema


def with_reason(params_schema: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A write tool's input: the operation's parameters plus the reason shown to the
    person (unless the operation has a parameter of that name)."""
    schema = copy.deepcopy(dict(params_schema))
    schema.pop("title", None)
    properties = schema.setdefault("properties", {})
    if REASON_ARG in properties:
        return schema, None
    properties[REASON_ARG] = REASON_SCHEMA
    return schema, REASON_ARG


def alias_input(
    params_schema: Mapping[str, Any], args: Mapping[str, str], *, with_service: bool
) -> dict[str, Any]:
    """An alias tool's input: the operation's parameters it maps (renamed), and
    ``service`` when the person has more than one service offering the operation."""
    schema = copy.deepcopy(dict(params_schema))
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    mapping = dict(args) or {name: name for name in properties}
    out_props: dict[str, Any] = {}
    out_required: list[str] = []
    if with_service:
        out_props["service"] = {
            "type": "string",
            "description": "The service, e.g. gmail; may be left out when only one has it.",
        }
    for tool_arg, param in mapping.items():
        if param in properties:
            out_props[tool_arg] = properties[param]
            if param in required:
                out_required.append(tool_arg)
    shaped: dict[str, Any] = {
        "type": "object",
        "properties": out_props,
        "additionalProperties": False,
    }
    if out_required:
        shaped["required"] = out_required
    if "$defs" in schema:
        shaped["$defs"] = schema["$defs"]
    return shaped
