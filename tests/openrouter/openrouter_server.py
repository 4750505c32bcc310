"""A local server speaking OpenRouter's wire format, for the connector's tests.

``GET /models`` (ids with prices in dollars per token, as strings), ``GET /key``,
``POST /chat/completions`` (JSON, or server-sent events with a final usage chunk when
``stream`` is true) and ``POST /embeddings``; ``usage.cost`` is reported when the request
says ``usage: {include: true}``, as OpenRouter does. Errors come in OpenRouter's shape
(``{"error": {"code", "message"}}``); :meth:`OpenRouterServer.fail` makes the next calls
of a path fail. Answers are deterministic: an answer has ``max_tokens`` tokens unless
:attr:`answer_tokens` says fewer, each token the two characters ``"w "``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.notifier_harness.threaded_server import ThreadedServer

MODELS: list[dict[str, Any]] = [
    {
        "id": "test/cheap",
        "name": "Test: cheap chat",
        "context_length": 8192,
        "pricing": {"prompt": "0.000001", "completion": "0.000002", "request": "0"},
    },
    {
        # Free prompts and answers that always fill max_tokens: a call costs exactly
        # its worst case, which makes budget arithmetic exact in tests.
        "id": "test/flat",
        "name": "Test: flat price",
        "context_length": 8192,
        "pricing": {"prompt": "0", "completion": "0.00001", "request": "0"},
    },
    {
        "id": "other/model",
        "name": "Not on the allow-list",
        "context_length": 8192,
        "pricing": {"prompt": "0.000001", "completion": "0.000001"},
    },
    {
        "id": "test/embed",
        "name": "Test: embeddings",
        "context_length": 8192,
        "pricing": {"prompt": "0.0000001", "completion": "0"},
    },
    {
        # Takes SLOW_FIRST_TOKEN seconds to its first token, as a real model thinks.
        "id": "test/slow",
        "name": "Test: slow to start",
        "context_length": 8192,
        "pricing": {"prompt": "0.000001", "completion": "0.000002", "request": "0"},
    },
    {
        "id": "test/variable",
        "name": "A router with no fixed price",
        "context_length": 8192,
        "pricing": {"prompt": "-1", "completion": "-1"},
    },
]
PRICES = {m["id"]: m["pricing"] for m in MODELS}
SLOW_FIRST_TOKEN = 0.05


def canary_key() -> str:
    """An OpenRouter-shaped key that appears nowhere unless something leaks it."""
    return f"sk-or-v1-CANARY{secrets.token_hex(24)}"


@dataclass
class Fault:
    status: int
    message: str
    retry_after: float | None = None


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any] | None
    authorization: str


@dataclass
class OpenRouterServer:
    key: str = field(default_factory=canary_key)
    answer_tokens: int | None = None
    """Tokens in an answer (default: all of max_tokens)."""
    extra_tokens: int = 0
    """Tokens streamed beyond max_tokens: a provider that ignores the limit."""
    cost_factor: Decimal = Decimal(1)
    """The reported cost over the listed price (above 1: a call costs more than quoted)."""
    report_cost: bool = True
    token_delay: float = 0.0
    """Seconds between streamed tokens."""
    thinking: bool = False
    """Streamed tokens come as reasoning (``delta.reasoning``), as a thinking model's do."""
    answer: dict[str, Any] | None = None
    """Sent instead of a (not streamed) chat answer, with status 200."""
    usage: dict[str, Any] | None = None
    """Sent instead of the usage the call had (a service reporting it oddly)."""
    held: threading.Event | None = None
    """While set to an event not yet set, an answer (JSON or stream) is held back after
    the request is taken and billed: a model still thinking when the caller gives up."""
    calls: list[Call] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.server = ThreadedServer(self.app)

    @property
    def url(self) -> str:
        return f"{self.server.url}/api/v1"

    def close(self) -> None:
        if self.held is not None:
            self.held.set()
        self.server.close()

    def reset(self) -> None:
        """Back to the defaults, for the next test sharing this server."""
        self.answer_tokens, self.extra_tokens, self.token_delay = None, 0, 0.0
        self.cost_factor, self.report_cost, self.usage = Decimal(1), True, None
        self.answer, self.thinking = None, False
        if self.held is not None:
            self.held.set()  # a call still held from the last test ends
        self.held = None
        self.calls.clear()
        self.faults.clear()

    def fail(
        self, path: str, status: int, *, times: int = 1, retry_after: float | None = None
    ) -> None:
        message = {
            401: "User not found.",
            402: "Insufficient credits",
            403: "Input was flagged by moderation",
        }.get(status, "failed")
        self.faults.setdefault(path, []).extend([Fault(status, message, retry_after)] * times)

    def spending_calls(self) -> list[Call]:
        """The calls that cost money (chat and embeddings), in order."""
        return [c for c in self.calls if c.path in ("/chat/completions", "/embeddings")]

    # -- the app ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/models", self._models)
        app.router.add_get("/api/v1/key", self._key)
        app.router.add_post("/api/v1/chat/completions", self._chat)
        app.router.add_post("/api/v1/embeddings", self._embeddings)
        return app

    async def _gate(self, request: web.Request, path: str) -> web.Response | None:
        body = await request.json() if request.method == "POST" else None
        auth = request.headers.get("Authorization", "")
        self.calls.append(Call(request.method, path, body, auth))
        if auth != f"Bearer {self.key}":
            return _error(401, "No auth credentials found")
        queued = self.faults.get(path)
        if queued:
            fault = queued.pop(0)
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
            return _error(fault.status, fault.message, headers)
        return None

    async def _models(self, request: web.Request) -> web.Response:
        refused = await self._gate(request, "/models")
        if refused is not None:
            return refused
        data = [{**m, "created": 1_700_000_000, "description": "a test model"} for m in MODELS]
        return web.json_response({"data": data})

    async def _key(self, request: web.Request) -> web.Response:
        refused = await self._gate(request, "/key")
        if refused is not None:
            return refused
        data = {
            "label": f"{self.key[:9]}...{self.key[-3:]}",
            "usage": 0.25,
            "limit": 10.0,
            "limit_remaining": 9.75,
            "is_free_tier": False,
            "rate_limit": {"requests": 10, "interval": "10s"},
        }
        return web.json_response({"data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request, "/chat/completions")
        if refused is not None:
            return refused
        body = self.calls[-1].body or {}
        model = body.get("model", "")
        if model not in PRICES:
            return _error(400, f"{model} is not a valid model ID")
        # Framed as Llama 3's chat template frames a prompt: the start of the text and
        # the answer's turn header (5), and each message's header and end (5).
        messages = body.get("messages", [])
        prompt = 5 + _written(body.get("tools"))
        for m in messages:
            prompt += _tokens(m.get("content")) + _tokens(m.get("tool_call_id")) + 5
            prompt += _written(m.get("tool_calls"))
        limit = int(body.get("max_tokens") or 100)
        answer = min(limit, self.answer_tokens) if self.answer_tokens is not None else limit
        usage = self._usage(body, model, prompt, answer + self.extra_tokens)
        if self.held is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.held.wait)
        base = {"id": f"gen-{secrets.token_hex(6)}", "created": int(time.time()), "model": model}
        if body.get("stream"):
            return await self._stream(request, base, answer + self.extra_tokens, usage)
        if self.answer is not None:
            return web.json_response(self.answer)
        message = {"role": "assistant", "content": "w " * answer}
        return web.json_response(
            {
                **base,
                "object": "chat.completion",
                "provider": "Test",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": usage,
            }
        )

    async def _stream(
        self, request: web.Request, base: dict[str, Any], tokens: int, usage: dict[str, Any]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b": OPENROUTER PROCESSING\n\n")
        if base["model"] == "test/slow":
            await asyncio.sleep(SLOW_FIRST_TOKEN)
        chunk = {**base, "object": "chat.completion.chunk"}
        for index in range(tokens):
            field = "reasoning" if self.thinking else "content"
            delta = {"role": "assistant", field: "w "} if index == 0 else {field: "w "}
            finish = "stop" if index == tokens - 1 else None
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            await response.write(_event({**chunk, "choices": [choice]}))
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
        await response.write(_event({**chunk, "choices": [], "usage": usage}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        refused = await self._gate(request, "/embeddings")
        if refused is not None:
            return refused
        body = self.calls[-1].body or {}
        model = body.get("model", "")
        if model not in PRICES:
            return _error(400, f"{model} is not a valid model ID")
        inputs = body.get("input")
        texts = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.125 * (i + 1)] * 8}
            for i in range(len(texts))
        ]
        usage = self._usage(body, model, sum(_tokens(t) for t in texts), 0)
        return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})

    def _usage(
        self, body: dict[str, Any], model: str, prompt: int, completion: int
    ) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if self.usage is not None:
            return self.usage
        wants_cost = isinstance(body.get("usage"), dict) and body["usage"].get("include")
        if wants_cost and self.report_cost:
            price = PRICES[model]
            cost = Decimal(price["prompt"]) * prompt + Decimal(price["completion"]) * completion
            usage["cost"] = float(cost * self.cost_factor)
        return usage


def _tokens(content: Any) -> int:
    """Roughly 4 bytes a token on ASCII, as real tokenisers give on English text, and a
    token a byte on the rest (characters outside a vocabulary fall back to bytes)."""
    if isinstance(content, str):
        data = content.encode()
        ascii_bytes = len(content.encode("ascii", "ignore"))
        return math.ceil(ascii_bytes / 4) + len(data) - ascii_bytes
    if isinstance(content, list):
        return sum(
            _tokens(part.get("text") if isinstance(part, dict) else part) for part in content
        )
    return 0


def _written(value: Any) -> int:
    """Tokens of tools or tool calls as a Llama 3.1 template writes them with ``tojson``
    (ASCII JSON, ``<>&'`` as six-byte escapes, a call's arguments read first, numbers as
    Python writes them), at a token a byte: escapes and digits tokenise badly."""
    if not value:
        return 0
    if isinstance(value, list):
        value = [_arguments_read(item) for item in value]
    text = json.dumps(value)
    return len(text) + 5 * sum(text.count(c) for c in "<>&'")


def _arguments_read(call: Any) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
        with contextlib.suppress(ValueError):
            return {
                **call,
                "function": {**function, "arguments": json.loads(function["arguments"])},
            }
    return call


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": {"code": status, "message": message}}, status=status, headers=headers
    )
