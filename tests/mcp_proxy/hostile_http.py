"""A hostile MCP server over streamable HTTP, answering in JSON (not SSE), in a process
of its own (what it builds is not counted as the connector host's memory): the handshake
as the MCP library expects it, one read-only tool, ``lookup``, and for its calls the
answer the test last asked for (``POST /answer``: ``blocks`` text blocks of ``text``
``repeat`` times each, sent ``gzip``-labelled or not).

    python tests/mcp_proxy/hostile_http.py PORT
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
from aiohttp import web

ANSWER: dict[str, Any] = {"blocks": 1, "text": "ok", "repeat": 1, "gzip": False}


async def set_answer(request: web.Request) -> web.Response:
    ANSWER.update(await request.json())
    return web.Response(status=204)


async def mcp(request: web.Request) -> web.StreamResponse:
    message: dict[str, Any] = await request.json()
    if "id" not in message:
        return web.Response(status=202)
    method, rid = message.get("method"), message["id"]
    if method == "tools/call":
        block = json.dumps({"type": "text", "text": ANSWER["text"] * ANSWER["repeat"]})
        content = ", ".join([block] * ANSWER["blocks"])
        result = f'{{"content": [{content}]}}'
        body = f'{{"jsonrpc": "2.0", "id": {json.dumps(rid)}, "result": {result}}}'
        headers = {"Content-Type": "application/json"}
        if ANSWER["gzip"]:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body.encode(), headers=headers)
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile-http", "version": "1"},
        }
    elif method == "tools/list":
        tool = {"name": "lookup", "inputSchema": {"type": "object"}}
        result = {"tools": [{**tool, "annotations": {"readOnlyHint": True}}]}
    else:
        error = {"code": -32601, "message": "no such method"}
        return web.json_response({"jsonrpc": "2.0", "id": rid, "error": error})
    return web.json_response({"jsonrpc": "2.0", "id": rid, "result": result})


async def not_allowed(request: web.Request) -> web.Response:
    return web.Response(status=405)


class HostileHttpServer:
    """This file's server, started on a free port; :meth:`answer` sets what it answers."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(self.port)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            stderr=subprocess.DEVNULL,
        )
        for _ in range(400):
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.025)  # the server's start, not a timing assumption of a test
        raise AssertionError("the hostile HTTP server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def answer(
        self, *, blocks: int = 1, text: str = "ok", repeat: int = 1, gzip: bool = False
    ) -> None:
        spec = {"blocks": blocks, "text": text, "repeat": repeat, "gzip": gzip}
        httpx.post(f"http://127.0.0.1:{self.port}/answer", json=spec).raise_for_status()

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(10)


if __name__ == "__main__":
    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/answer", set_answer)
    app.router.add_post("/mcp", mcp)
    app.router.add_route("*", "/mcp", not_allowed)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
