"""GET /v1/openapi.json: generated from the route table the daemon serves, so every route
is described (a drift test over the router) with the models its handlers speak."""

from __future__ import annotations

import asyncio
import json
import re
from types import SimpleNamespace
from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from airlock import api_openai as api
from airlock import errors
from airlock.daemon.runtime import Runtime
from airlock.daemon.server import build_web_app


def served_app() -> web.Application:
    """The daemon's web app as ``airlock serve`` builds it (its runtime is not needed to
    route or to describe)."""
    runtime = SimpleNamespace(config=SimpleNamespace(daemon=SimpleNamespace(idle_timeout=30)))
    return build_web_app(cast(Runtime, runtime))


async def served_document(app: web.Application) -> dict[str, Any]:
    """What ``GET /v1/openapi.json`` answers, from the handler the router picks."""
    request = make_mocked_request("GET", "/v1/openapi.json", app=app)
    match = await app.router.resolve(request)
    response = await match.handler(request)
    assert isinstance(response, web.Response)
    assert response.text is not None
    document: dict[str, Any] = json.loads(response.text)
    return document


def test_every_route_the_daemon_serves_is_in_the_openapi_document() -> None:
    """Drift test over the router itself: a route added anywhere (the OpenAI endpoint's
    included) without being described fails here, and so does a described one not served."""
    app = served_app()
    document = asyncio.run(served_document(app))
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    described = {(m.upper(), path) for path, ops in document["paths"].items() for m in ops}
    assert served == described
    for path, ops in document["paths"].items():
        for operation in ops.values():
            named = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert named == set(re.findall(r"{(\w+)}", path)), path


def test_the_openai_routes_are_described_in_openais_format() -> None:
    document = asyncio.run(served_document(served_app()))
    paths, schemas = document["paths"], document["components"]["schemas"]

    def ref(schema: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return found

    chat = paths["/v1/openai/{service}/chat/completions"]["post"]
    body = ref(chat["requestBody"]["content"]["application/json"]["schema"])
    assert {"model", "messages"} <= set(body["required"])
    assert {"max_tokens", "temperature", "stream", "tools"} <= set(body["properties"])
    answer = chat["responses"]["200"]["content"]
    assert ref(answer["application/json"]["schema"])["properties"]["object"]["const"] == (
        "chat.completion"
    )
    chunk = ref(answer["text/event-stream"]["x-event-schema"])
    assert chunk["properties"]["object"]["const"] == "chat.completion.chunk"
    assert {p["name"] for p in chat["parameters"]} == {"service", "Authorization"}

    embeddings = paths["/v1/openai/{service}/embeddings"]["post"]
    body = ref(embeddings["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["required"]) == {"model", "input"}
    listed = ref(embeddings["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"data", "model", "usage"} <= set(listed["properties"])

    models = paths["/v1/openai/{service}/models"]
    assert set(models) == {"get"}
    listing = ref(models["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    assert listing["properties"]["data"]["items"]["$ref"].endswith("/OpenAIModel")

    # Validated against real wire objects: what the SDK sends and the local OpenRouter answers.
    api.OpenAIChatRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    api.OpenAIChatChunk.model_validate(
        {
            "id": "gen-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
        }
    )


def test_the_openapi_document_lists_every_error_status() -> None:
    document = asyncio.run(served_document(served_app()))
    for operation in (op for path in document["paths"].values() for op in path.values()):
        assert {str(status) for status in errors.HTTP_ERRORS} <= set(operation["responses"])
