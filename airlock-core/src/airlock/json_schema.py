"""Parameters checked against a JSON Schema (a listed operation's params, e.g. an MCP
tool's ``inputSchema``), with errors that name the field and never quote the value."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from airlock.errors import ConnectorError, InvalidInput

__all__ = ["check_json", "check_schema", "checkable"]


WORK_BASE = 100_000
WORK_PER_VALUE = 20
"""Schema keywords applied to one call's params at most: WORK_BASE, and WORK_PER_VALUE
more for each value in them (each object, array, string, number...). A schema may refer
to itself through ``oneOf`` so that each level of a nested value doubles the work:
forty brackets would take the daemon years. Honest params need a few per value."""
_left: ContextVar[list[int]] = ContextVar("schema_work_left")
_bounded: dict[Any, Any] = {}


class _TooMuchWork(Exception):
    pass


def _counted(keyword: Any) -> Any:
    def counted(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        left = _left.get(None)
        if left is not None:  # None: checking a schema itself, against its metaschema
            left[0] -= 1
            if left[0] < 0:
                raise _TooMuchWork
        return keyword(validator, value, instance, schema)

    return counted


def _values_in(params: Mapping[str, Any]) -> int:
    count = 0
    stack: list[Any] = [params]
    while stack:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def _same(value: Any) -> Any:
    """*value* as something hashable that is equal where JSON Schema says the values are
    equal (``1`` and ``1.0``; not ``1`` and ``true``)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, dict):
        return ("object", frozenset((key, _same(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_same(item) for item in value))
    return value


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Any:
    """``uniqueItems`` in linear time: jsonschema compares every pair of objects, which
    for the 100,000 of a 1 MiB body takes hours."""
    from jsonschema.exceptions import ValidationError

    array = unique and validator.is_type(instance, "array")
    if array and len({_same(item) for item in instance}) != len(instance):
        yield ValidationError("has non-unique elements")


def _validator_class(schema: Mapping[str, Any]) -> Any:
    """The schema's draft's validator, with each keyword counted (see :data:`WORK_BASE`)
    and ``uniqueItems`` in linear time."""
    from jsonschema import Draft202012Validator, validators

    # The schema's own "$schema" picks the draft; none means the current one. No
    # "$ref" is fetched from the network: the referencing library resolves local ones only.
    base = validators.validator_for(schema, default=Draft202012Validator)
    if base not in _bounded:
        keywords = {**base.VALIDATORS}
        if "uniqueItems" in keywords:
            keywords["uniqueItems"] = _unique_items
        counted = {name: _counted(keyword) for name, keyword in keywords.items()}
        _bounded[base] = validators.extend(base, counted)
    return _bounded[base]


def check_schema(schema: Mapping[str, Any]) -> None:
    """ValueError unless *schema* is a valid JSON Schema for a JSON object."""
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise ValueError("the params schema must describe a JSON object")
    try:
        _validator_class(schema).check_schema(schema)  # the metaschema's own validator
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None


def checkable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of *schema* that :func:`check_json` can apply to anyone's params in bounded
    time. Without the keywords that run its own regular expressions on the caller's
    input, ``pattern`` and ``patternProperties``: Python's backtrack, and a service's
    ``^(a+)+$`` takes years on forty a's and a "!" (the service checks those itself; an
    object losing ``patternProperties`` loses ``additionalProperties`` and
    ``unevaluatedProperties`` too, so no name they allowed is refused). And without a
    ``$schema`` below the top, which would switch to a validator that does not count its
    work (see :data:`WORK_BASE`). Every object is walked: a ``$ref`` may point anywhere."""
    copied: dict[str, Any] = copy.deepcopy(dict(schema))
    stack: list[Any] = [value for value in copied.values()]
    _drop_regexes(copied)
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        _drop_regexes(node)
        if isinstance(node.get("$schema"), str):
            del node["$schema"]
        stack.extend(node.values())
    return copied


def _drop_regexes(node: dict[str, Any]) -> None:
    if isinstance(node.get("pattern"), str):
        del node["pattern"]
    if isinstance(node.get("patternProperties"), dict):
        del node["patternProperties"]
        node.pop("additionalProperties", None)
        node.pop("unevaluatedProperties", None)


def check_json(schema: Mapping[str, Any], value: Mapping[str, Any], *, within: str = "") -> None:
    """InvalidInput naming the first field of *value* that *schema* (as :func:`checkable`
    made it) refuses, or when checking would take more than its share (:data:`WORK_BASE`); a
    ConnectorError when the schema itself cannot be applied (its ``$ref`` loops without
    end or names a schema it does not contain: the service's fault, not the caller's)."""
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    validator = _validator_class(schema)(schema)
    spending = _left.set([WORK_BASE + WORK_PER_VALUE * _values_in(value)])
    try:
        error = best_match(validator.iter_errors(dict(value)))
    except _TooMuchWork:
        raise InvalidInput(
            f"{within or 'params'}: too much to check against the operation's schema",
            field=within or None,
            hint="send less, or fewer levels of nesting",
        ) from None
    except RecursionError:
        raise ConnectorError(
            "the operation's schema cannot be checked: it refers to itself without end"
        ) from None
    except Unresolvable:
        raise ConnectorError(
            "the operation's schema cannot be checked: it refers to a schema it does not hold"
        ) from None
    finally:
        _left.reset(spending)
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
