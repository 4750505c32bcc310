"""The HTTP API's routes described (:class:`Route`) and the OpenAPI 3.1 document generated
from the route table's models. The table itself is in ``routes``, which imports this."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from airlock._version import __version__
from airlock.api import ErrorOut
from airlock.daemon.http import Handler
from airlock.errors import HTTP_ERRORS


@dataclass(frozen=True)
class Route:
    """One endpoint: what serves it and what it takes and answers (for the document)."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    events: type[BaseModel] | None = None
    """With ``stream: true`` in the body: the answer is server-sent events, each ``data:``
    one of these (the OpenAI endpoint's streamed chat)."""


def openapi_document(routes: tuple[Route, ...]) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorOut}
    for route in routes:
        models.update(m for m in (route.body, route.response, route.events) if m is not None)
    _, schemas = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": _operation_id(route),
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", route.path)
            ]
            + [
                {"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
                for q in route.query
            ]
            + [
                {"name": h, "in": "header", "required": False, "schema": {"type": "string"}}
                for h in route.headers
            ],
            "responses": {
                str(route.status): {"description": "OK", "content": _content(route)},
                **{
                    str(status): {
                        "description": text,
                        "content": {"application/json": {"schema": _ref(ErrorOut)}},
                    }
                    for status, (_, text) in HTTP_ERRORS.items()
                },
            },
        }
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(route.body)}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Airlock daemon API", "version": __version__},
        "servers": [{"url": "http://airlock"}],
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }


def _content(route: Route) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _ref(route.response)}}
    if route.events is not None:
        content["text/event-stream"] = {
            "schema": {
                "type": "string",
                "description": f"Server-sent events: each `data:` line one {route.events.__name__}"
                ' as JSON, then `data: [DONE]`, or `data: {"error": {"code", "message"}}` '
                "when the stream is cut short",
            },
            "x-event-schema": _ref(route.events),
        }
    return content


def _operation_id(route: Route) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", route.path.lower()).strip("_")
    return f"{route.method.lower()}_{words}"


def _ref(model: type | None) -> dict[str, Any]:
    if model is None:
        return {"type": "object"}
    return {"$ref": f"#/components/schemas/{model.__name__}"}
