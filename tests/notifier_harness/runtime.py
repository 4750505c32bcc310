"""An in-process daemon runtime (no socket) with an injected clock and a real TOTP secret:
for approval flows whose timing the test controls. The notifier under test is the real
plugin, opened by the runtime from config and vault exactly as ``airlock serve`` does."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pyotp

from airlock.api import AccessRequestCreated, AccessRequestIn
from airlock.common.clock import FakeClock
from airlock.connector_host.in_process import InProcessHost
from airlock.daemon.runtime import Runtime
from airlock.framework.plugins import get_connectors, get_plugin_manager
from airlock.security.peers import Peer
from airlock.security.totp import save_secret
from airlock.security.vault import TotpKey, Vault
from airlock.settings.config import AirlockConfig
from airlock.settings.paths import resolve_paths
from tests.notifier_harness.echo_plugin import EchoPlugin

ME = Peer(uid=os.getuid(), pid=os.getpid())


class Phone:
    """The person's authenticator app against an injected clock: each code is fresh."""

    def __init__(self, secret: str, clock: FakeClock) -> None:
        self.totp = pyotp.TOTP(secret)
        self.clock = clock

    def code(self) -> str:
        self.clock.advance(30)  # a new time step, so the code was never used
        return str(self.totp.at(self.clock.now()))


def make_runtime(
    home: Path,
    plugin: ModuleType,
    notifier: str,
    settings: Mapping[str, Any],
    credentials: Mapping[str, str] | None = None,
    **config: Any,
) -> tuple[Runtime, Phone]:
    paths = resolve_paths({"AIRLOCK_HOME": str(home)})
    paths.ensure_data_dirs()
    secret = pyotp.random_base32()
    save_secret(paths.totp_file, secret)
    if credentials:
        Vault(paths.vault_file, TotpKey(secret)).set(notifier, dict(credentials))
    clock = FakeClock(start=1_800_000_000.0)
    airlock_config = AirlockConfig(
        services={"echo": {"connector": "echo"}},
        approvals={"notifiers": ["console", notifier], **config.pop("approvals", {})},
        notifiers={notifier: dict(settings)},
        **config,
    )
    pm = get_plugin_manager(load_entry_points=False, env={}, extra_plugins=[EchoPlugin(), plugin])
    host = InProcessHost(get_connectors(pm), paths.connectors_dir)
    runtime = Runtime(paths, pm, clock=clock, config=airlock_config, host=host)
    return runtime, Phone(secret, clock)


# A scenario waits for things with `eventually` (bounded); these bound the rest, so a
# hang fails the test with every task's stack instead of stalling the whole run.
SCENARIO_LIMIT = 120.0
STOP_LIMIT = 30.0


def run_scenario(
    runtime: Runtime, phone: Phone, scenario: Callable[[Runtime, Phone], Awaitable[None]]
) -> None:
    """Start the runtime (its notifiers start listening), play *scenario*, stop it."""

    async def main() -> None:
        await bounded(runtime.start(), SCENARIO_LIMIT, "starting the runtime")
        try:
            await bounded(scenario(runtime, phone), SCENARIO_LIMIT, "the scenario")
        finally:
            await bounded(runtime.stop(), STOP_LIMIT, "stopping the runtime")

    asyncio.run(main())


async def bounded(work: Awaitable[None], limit: float, what: str) -> None:
    """Await *work* for at most *limit* seconds; past it, fail naming what every task of
    the loop was waiting on (their stacks), then cancel it."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=limit)
    if task in done:
        task.result()
        return
    stacks = [f"  {t.get_name()}: {_awaiting(t.get_coro())}" for t in asyncio.all_tasks()]
    task.cancel()
    raise AssertionError(f"{what} did not finish in {limit:.0f} s; tasks:\n" + "\n".join(stacks))


def _awaiting(coro: Any) -> str:
    """The chain of coroutines *coro* is suspended in, outermost first."""
    chain = []
    while coro is not None and len(chain) < 20:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " -> ".join(chain) or "running"


_ASKS = itertools.count()


def distinct_ttl() -> str:
    """A TTL no other ask of this run used: asking again for exactly the same thing joins
    the pending request, and these tests want several requests."""
    return f"{60 + next(_ASKS) % 400}m"


async def ask(runtime: Runtime, reason: str = "read my echo", **body: Any) -> AccessRequestCreated:
    body.setdefault("services", ["echo"])
    body.setdefault("ttl", distinct_ttl())
    return await runtime.approvals.create_request(AccessRequestIn(reason=reason, **body), ME)


async def status_of(runtime: Runtime, created: AccessRequestCreated) -> str:
    state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
    return str(state.status)


def audit_events(runtime: Runtime, event: str | None = None) -> list[dict[str, Any]]:
    lines = (runtime.paths.audit_dir / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    return [e for e in events if event is None or e["event"] == event]
