"""Parameters checked against a JSON Schema (a listed operation's params, e.g. an MCP
tool's ``inputSchema``), with errors that name the field and never quote the value."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from airlock.errors import ConnectorError, InvalidInput

__all__ = ["check_json", "check_schema", "without_regexes"]


def _validator_class(schema: Mapping[str, Any]) -> Any:
    from jsonschema import Draft202012Validator, validators

    # The schema's own "$schema" picks the draft; none means the current one. No
    # "$ref" is fetched from the network: the referencing library resolves local ones only.
    return validators.validator_for(schema, default=Draft202012Validator)


def check_schema(schema: Mapping[str, Any]) -> None:
    """ValueError unless *schema* is a valid JSON Schema for a JSON object."""
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise ValueError("the params schema must describe a JSON object")
    try:
        _validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None


def without_regexes(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of *schema* without the keywords that run its own regular expressions on
    the caller's input: ``pattern`` and ``patternProperties``. Python's backtrack: a
    service's ``^(a+)+$`` takes years on forty a's and a "!", and the daemon checks
    params on its event loop. The service checks those itself. An object that loses its
    ``patternProperties`` loses its ``additionalProperties`` and ``unevaluatedProperties``
    too, so a name they would allow is not refused. Every object is walked: a ``$ref``
    may point anywhere in the schema."""
    copied: dict[str, Any] = copy.deepcopy(dict(schema))
    stack: list[Any] = [copied]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("pattern"), str):
            del node["pattern"]
        if isinstance(node.get("patternProperties"), dict):
            del node["patternProperties"]
            node.pop("additionalProperties", None)
            node.pop("unevaluatedProperties", None)
        stack.extend(node.values())
    return copied


def check_json(schema: Mapping[str, Any], value: Mapping[str, Any], *, within: str = "") -> None:
    """InvalidInput naming the first field of *value* that *schema* refuses; a
    ConnectorError when the schema itself cannot be applied (its ``$ref`` loops without
    end or names a schema it does not contain: the service's fault, not the caller's)."""
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    validator = _validator_class(schema)(schema)
    try:
        error = best_match(validator.iter_errors(dict(value)))
    except RecursionError:
        raise ConnectorError(
            "the operation's schema cannot be checked: it refers to itself without end"
        ) from None
    except Unresolvable:
        raise ConnectorError(
            "the operation's schema cannot be checked: it refers to a schema it does not hold"
        ) from None
    if error is None:
        return
    path = [str(part) for part in error.absolute_path]
    instance = error.instance
    message = f"not allowed by the schema ({error.validator})"
    if error.validator == "required" and isinstance(instance, Mapping):
        missing = [k for k in error.validator_value if k not in instance]
        path += missing[:1]
        message = "Field required"
    elif error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = set(error.schema.get("properties", {}))
        extra = [k for k in instance if k not in known]
        path += [str(k) for k in extra[:1]]
        message = "Extra inputs are not permitted"
    elif error.validator == "type":
        message = f"must be of type {error.validator_value}"
    elif error.validator == "enum":
        message = "must be one of the listed values"
    field = ".".join([within, *path] if within else path)
    raise InvalidInput(f"{field or 'params'}: {message}", field=field or within or None)
