"""The throughput ceiling the gateway is compared with: a bare aiohttp app on a Unix socket.

It answers ``POST /v1/ops/{service}/{operation}`` with a JSON body shaped like the
daemon's, on the same event loop (uvloop when installed) and socket type, doing no work:
whatever the daemon serves below this is the cost of Airlock itself.

    python benchmarks/_bare_aiohttp.py SOCKET_PATH
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

BODY = json.dumps(
    {"result": {"count": 2}, "untrusted": True, "service": "mail", "operation": "count_unread"}
).encode()


async def op(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, content_type="application/json")


def main() -> None:
    try:
        import uvloop
    except ImportError:  # the daemon runs on asyncio's loop then too
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app.router.add_post("/v1/ops/{service}/{operation}", op)
    web.run_app(app, path=sys.argv[1], print=None, handle_signals=True)


if __name__ == "__main__":
    main()
