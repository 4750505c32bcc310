"""Approval latency over Telegram (issue 6). Prints JSON.

A real daemon process runs the telegram notifier against the local Bot API server of
the tests. For each run an agent asks for access and starts its long-poll; the "person"
replies to the prompt with a fresh TOTP code. Measured: from the reply reaching the Bot
API server (queued as an update) to the agent's long-poll returning the session.

A TOTP code is accepted once, and the verifier takes the current time step and the ones
either side, so one daemon can approve three requests in a row; every three runs start
a fresh daemon (not timed).

    uv run python benchmarks/telegram_approval.py --runs 30

Target: p50 <= 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the Bot API server and the daemon harness of the tests

from tests.notifier_harness.daemon import NotifierDaemon, collect, request  # noqa: E402
from tests.telegram.bot_api_server import BotApiServer  # noqa: E402
from tests.telegram.conftest import canary_token, prompt_id, settings_for  # noqa: E402

RUNS_PER_DAEMON = 3


async def one_approval(daemon: NotifierDaemon, bot_api: BotApiServer) -> float:
    async with daemon.client() as agent:
        created = await request(agent)
        message_id = await prompt_id(bot_api, created["code"])
        code = daemon.phone.code()
        polling = asyncio.ensure_future(collect(agent, created, wait=30))
        await asyncio.sleep(0.05)  # the agent is waiting before the person answers
        start = time.perf_counter()
        await asyncio.to_thread(bot_api.say, code, reply_to=message_id)
        state = await polling
        elapsed = time.perf_counter() - start
    if state["status"] != "approved" or not state.get("session"):
        raise RuntimeError(f"not approved: {state}")
    return elapsed


def run(runs: int) -> dict[str, object]:
    bot_api = BotApiServer(canary_token())
    samples: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="airlock-bench-") as tmp:
            for batch in range(0, runs, RUNS_PER_DAEMON):
                settings = settings_for(bot_api, poll_timeout=30)
                daemon = NotifierDaemon(
                    Path(tmp) / f"home{batch}", "telegram", settings, {"bot_token": bot_api.token}
                ).start()
                try:
                    for _ in range(min(RUNS_PER_DAEMON, runs - batch)):
                        samples.append(asyncio.run(one_approval(daemon, bot_api)))
                finally:
                    daemon.stop()
    finally:
        bot_api.close()
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "benchmark": "telegram_approval_latency",
        "what": "reply reaches the Bot API server -> agent's long-poll returns the session",
        "runs": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
        "target_p50_ms": 500,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(run(args.runs), indent=2))


if __name__ == "__main__":
    main()
