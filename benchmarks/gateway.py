"""Gateway overhead, throughput, approval latency and MCP tool-call overhead. Prints JSON.

One operation (`count_unread` on a Maildir) is timed several ways:
* the connector called in-process (the baseline: what the work itself costs),
* through a real daemon process on its Unix socket (session check, policies, connector,
  redaction, an fsynced audit record), driven by the raw-socket load generator of
  ``_loadgen.py`` from 1 client and from 32 concurrent clients,
* a bare aiohttp app on the same kind of socket and loop, driven the same way in the same
  run: the ceiling a Python HTTP server reaches here, and the ratio the target is set on,
* through ``AirlockClient`` (the Python client) and as an MCP tool call through the
  in-process MCP server (which calls the daemon).

The daemon runs every connector in its connector host, a child process: each operation
crosses that hop (a framed JSON request and answer over a socket pair). To price it, the
same daemon also runs in the same run with the host's code on its own event loop
(``_in_process_serve.py``: the same protocol, no process), and the figures are compared.

Where a call's CPU goes (issue 17; 2026-12-02, this 2-core VM shared with other work at
load 3-5, so figures are ranges over 2-3 runs; ``server_cpu_us_per_op`` survives load,
wall-clock throughput and latency do not):

* Parts switched off one at a time in a diagnostic daemon (daemon CPU a call, 32 clients
  / 1 client): whole call 278-311 / 850-900 us; no audit record 167-172 / 340-370; record
  formatted, MACed and written but not fdatasynced 197-231 / 510-580; no connector host
  (result made in the daemon) 183-206 / 590-610; no policy evaluation 231-234 / 720-830;
  neither audit nor host 147-216 / 250-310 (1-client p50 0.29-0.35 ms against 1.1-1.3).
  The fsynced audit record is the largest part (~110 us at 32 clients, ~500 us at 1
  client, where nothing is shared: a thread hand-off each way and one fdatasync, ~160 us
  wall and ~66 us of kernel CPU here), then the host hop (~90 / ~270 us).
* py-spy ``--gil`` on the daemon's event-loop thread, 32 clients (2,072 samples, leaving
  out the stalls while the host it just woke runs on its core): aiohttp (parsing, routing,
  the response, then three middlewares, the body) 40 %; gateway code (handler, admission,
  execution, use counts) 13 %; host hop (framing, the answer's future and timer, reading
  and re-validating the answer) 11 %; policies (evaluation, the redaction filter) 8.5 %;
  JSON (body, frames, audit fields) 8 %; pydantic 7 % (five validations a call: body,
  params, the host's result, the envelope, the service's permissions; four dumps); event
  loop 5 %; audit queueing 4.5 % and record formatting/scrubbing 2 %; session lookup 1.4 %
  (cached: no SQLite read a call, use counts written in one UPDATE a session each
  housekeeping); logging 0 % (no structlog call on the success path). The audit writer
  thread adds 25-40 us a call (line formatting 28 %, HMAC-SHA256 10 %, write, fdatasync,
  lock). The connector host: 60-85 us a call, its event loop and framing 63 %, JSON 10 %,
  pydantic 5 % (params validated again, result made and dumped), the Maildir check 11 %.
* ``count_unread`` itself counts flags from file names (scandir of ``cur/`` and ``new/``)
  and keeps the count while both directories keep their mtime: ~20 us of CPU.

What changed, alternating the old daemon (73403fe) and the new in the same run, host
process, load 3.5-5.4: daemon CPU a call at 32 clients 339-464 -> 227-300 us, connector
host 194-270 -> 62-84 us; at 1 client daemon 890-895 -> 710-950 (within noise), host
370-450 -> 225-280; ``count_unread`` in-process p50 0.073-0.100 -> 0.020-0.031 ms. By:
the kept count checked on the host's loop instead of a worker thread (it cost 95 us of
thread hand-off against 20 us of work), the host on uvloop like the daemon, host frames
of one loop turn written together both ways (about 17 a write at 32 clients), the audit
log leading batches on its own thread and waking each loop once a batch, no timer for a
body that came whole, one timer instead of ``wait_for`` per host request, the peer's
credentials read once a connection, use counts saved in one UPDATE a session.
Then (6 runs each, alternated, load 1.2-1.8): 32 clients 236-323 us a call (median 262)
-> 222-289 (median 243), 2,366-3,258 -> 2,224-3,258 calls/s, by one middleware instead
of three, the answer's JSON built around the result's (no dump, envelope validation and
dump), each service's permissions kept per gateway, and the redaction filter's dump
skipped for result models that provably hold no text key (``UnreadCount``): two
validations and two dumps a call fewer, within the noise of a shared machine. This
benchmark after (load ~1.4): 2,861 calls/s at 269 us, bare aiohttp 19,289 at 52, ratio
0.15: aiohttp's own per-request work and the required record and hop still dominate.

Before, on a quiet machine (load ~1, 17:38 that day): in-process 0.231 ms p50; gateway
1 client 1.449 ms p50 at 960 us of daemon CPU a call, without the host process 1.345 ms;
32 clients 2,774 calls/s, p50 10.9 ms, 334 us a call; bare aiohttp 17,834 calls/s at 56
us; ratio 0.155. After, three runs of this benchmark back to back (load 3.3-3.9):
in-process 0.019-0.020 ms; gateway 1 client 0.99-1.51 ms p50 (overhead 0.97-1.49 ms) at
670-1,070 us; without the host process 0.93-1.05 ms (overhead 0.91-1.03 ms); 32 clients
1,915-2,873 calls/s, p50 10.7-13.4 ms, 242-259 us a call; the hop costs 0.03-0.58 ms at
p50 and no throughput (the host's work runs on the other core); bare aiohttp 7,915-18,321
calls/s at 38-64 us, ratio 0.16-0.24. So the 2 ms overhead holds, the 1 ms one without
the hop holds in two runs of three (at the edge: the fsynced record alone is ~0.5 ms at 1
client), and 35 % of bare aiohttp does not: the daemon's event-loop thread needs ~240 us
a call where the bare app needs 40-60, which caps it near 4,100 calls/s even with the
other core free, ~23 % of a quiet bare app; 35 % would need ~160 us, and the durable
audit record and the host hop, both required, take 100-140 us of it.

The load generator reports its own CPU per operation next to the server's: it must cost
less than what it measures, or the figures measure the client.

The Python client and the MCP tool call are each timed next to a raw request (the load
generator's, same session) in three interleaved rounds, their median round reported;
``python_client_overhead_p50_ms`` is the client's p50 minus that raw request's, and
the client's own CPU a call (``cpu_us_per_call``; for the MCP call, the in-process MCP
client's and server's too) is reported beside it, being what load disturbs least.
Where an MCP call's CPU goes (2026-12-02, ~0.7-0.8 ms a call, load ~3): the Python
client's request ~0.2 ms (of which the socket's syscalls ~0.1), Airlock's tool layer
(tool lookup, ``invoke``) ~0.06, the MCP client validating the result against the tool's
output schema (jsonschema) ~0.1-0.2, the SDK's JSON-RPC on both sides the rest. Until
that day the client spoke through aiohttp's client, and every tool call rebuilt every
tool's schemas to find its own (~2.8 ms). The transports alone, one request to the same
daemon (load ~3, CPU a request): the load generator 78 us, asyncio streams kept alive
132 (the client's now, ``airlock.clients._wire``), aiohttp's client 474, httpx's async
client on its Unix-socket transport 1,627 (p50 +0, +0, +1.6 and +3.0 ms). The same
daemon with the old and the new client and MCP code, back to back, load ~3 (median of 5
rounds of 300): client CPU 325 -> 187 us a call (overhead 0.29 -> 0.06 ms p50), MCP tool
call 4.42 -> 1.96 ms p50, 2,863 -> 754 us CPU. This benchmark at load ~3 after: client
overhead 0.17 ms (raw 1.04, client 1.21 ms), MCP tool call 1.89 ms; on a quiet machine
before: 1.08 ms and 6.27 ms.

An agent runs ``airlock mcp`` as its own process on stdio, so ``airlock_status`` is also
called through that subprocess next to the same call in process (``mcp.stdio``). The
SDK's stdio reads and writes through worker threads; since 2026-12-02 the server reads
and writes its pipes on the event loop (``airlock.mcp.stdio``): the server process's
CPU a call went from 2,094-2,219 to 1,281-1,594 us (load ~5), the rest being the SDK's
own per-message work (memory streams, a task per request, validation); at load ~3 the
stdio hop adds 0.82 ms p50 to a call (server process 0.92 ms CPU a call).

Targets (client and MCP): the Python client <= 0.5 ms p50 over the raw request, an MCP
tool call (in process) <= 4 ms p50.

Targets: overhead p50 <= 1 ms over the connector in-process without the hop, <= 2 ms with
it; at 32 clients >= 35 % of the bare aiohttp app's throughput; the hop costs at most
15 % of the throughput at 32 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loadgen import drive, process_cpu_seconds, request_bytes
from airlock.clients.local_daemon import LocalDaemon
from airlock.demo.sample_mail import write_sample_maildir
from airlock.framework.plugins import get_connectors, get_plugin_manager
from airlock.security.totp import save_secret

OPERATION = ("mail", "count_unread", {"folder": "INBOX"})
TARGET_OVERHEAD_MS = 1.0
TARGET_OVERHEAD_WITH_HOP_MS = 2.0
TARGET_HOP_THROUGHPUT_LOSS = 0.15
TARGET_RATIO = 0.35
TARGET_CLIENT_MS = 0.5
TARGET_MCP_MS = 4.0


def settled_maildir(home: Path) -> Path:
    """The sample Maildir with ``cur/`` and ``new/`` untouched for a minute, as a person's
    usually are: the connector keeps an unchanged folder's unread count between calls
    (a directory written within the last second is counted again on every call), and
    every figure below, the in-process one included, sees the same connector work."""
    maildir = write_sample_maildir(home / "Maildir")
    for sub in ("cur", "new"):
        info = os.stat(maildir / sub)
        os.utime(maildir / sub, ns=(info.st_atime_ns, info.st_mtime_ns - 60 * 10**9))
    return maildir


def summary(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "ops_per_s": round(len(ordered) / sum(ordered), 1),
    }


async def timed(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    for _ in range(min(20, n)):
        await call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def direct_baseline(maildir: Path, n: int) -> dict[str, float]:
    cls = get_connectors(get_plugin_manager())["maildir"]
    connector = cls(
        cls.parse_settings({"path": str(maildir)}, service="mail"),
        cls.Credentials(),
        service="mail",
    )
    await connector.open()
    try:
        return summary(await timed(lambda: connector.call(OPERATION[1], OPERATION[2]), n))
    finally:
        await connector.close()


class Agent:
    """A minimal HTTP client on the socket (aiohttp's: it adds ~0.5 ms a call here, where
    httpx's async client adds ~3 ms; the gateway is what is measured)."""

    def __init__(self, socket: Path, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(socket)), headers=headers
        )

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    async def get(self, path: str, **kw: Any) -> Any:
        async with self._session.get(f"http://airlock{path}", **kw) as response:
            response.raise_for_status()
            return await response.json()

    async def post(self, path: str, body: dict[str, Any], **kw: Any) -> Any:
        async with self._session.post(f"http://airlock{path}", json=body, **kw) as response:
            response.raise_for_status()
            return await response.json()


def client(socket: Path, token: str | None = None) -> Agent:
    return Agent(socket, token)


async def open_session(socket: Path, totp: pyotp.TOTP, step: int) -> str:
    async with client(socket) as agent:
        created = await agent.post("/v1/requests", {"services": ["mail"], "reason": "benchmark"})
        await agent.post(f"/v1/requests/{created['code']}/approve", {"totp": totp.at(step * 30)})
        claim = {"X-Airlock-Claim": created["claim"]}
        state = await agent.get(f"/v1/requests/{created['id']}", headers=claim)
        return str(state["session"]["token"])


def op_request(token: str) -> bytes:
    service, op, params = OPERATION
    body = json.dumps({"params": params}).encode()
    return request_bytes(
        "POST", f"/v1/ops/{service}/{op}", body, {"Authorization": f"Bearer {token}"}
    )


def bare_aiohttp(home: Path, clients: int, per_client: int, n: int) -> dict[str, Any]:
    """The same load against a bare aiohttp app (no Airlock) on the same kind of socket."""
    socket_path = home / "bare.sock"
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_bare_aiohttp.py")), str(socket_path)]
    )
    try:
        deadline = time.monotonic() + 20
        while not socket_path.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bare aiohttp app did not start")
            time.sleep(0.02)
        request = op_request("none")
        drive(socket_path, request, clients=1, per_client=100)  # warm-up
        return {
            "1_client": drive(socket_path, request, clients=1, per_client=n, server_pid=server.pid),
            f"{clients}_clients": drive(
                socket_path, request, clients=clients, per_client=per_client, server_pid=server.pid
            ),
        }
    finally:
        server.terminate()
        server.wait()


async def approval_latency(socket: Path, totp: pyotp.TOTP, steps: list[int]) -> dict[str, float]:
    """From the person's answer (approve sent) to the agent's long-poll returning the token."""
    latencies = []
    async with client(socket) as agent, client(socket) as person:
        for step in steps:
            created = await agent.post("/v1/requests", {"services": ["mail"], "reason": "latency"})
            claim = {"X-Airlock-Claim": created["claim"]}
            poll = asyncio.create_task(
                agent.get(f"/v1/requests/{created['id']}?wait=30", headers=claim)
            )
            await asyncio.sleep(0.2)  # the agent is parked in its long-poll
            started = time.perf_counter()
            await person.post(
                f"/v1/requests/{created['code']}/approve", {"totp": totp.at(step * 30)}
            )
            state = await poll
            latencies.append(time.perf_counter() - started)
            assert state["status"] == "approved"
    return {"median_ms": round(statistics.median(latencies) * 1000, 2), "samples": len(latencies)}


async def _timed_cpu(call: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    """:func:`timed`, with the CPU this process spent a call (for an MCP call: the
    in-process MCP client's, the server's and the Python client's)."""
    await call()
    cpu = time.process_time()
    figures = summary(await timed(call, n))
    figures["cpu_us_per_call"] = round((time.process_time() - cpu) / (n + min(20, n)) * 1e6, 1)
    return figures


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose p50 is the median of the rounds' (an odd number of them)."""
    return sorted(rounds, key=lambda r: float(r["p50_ms"]))[len(rounds) // 2]


async def mcp_overhead(
    socket: Path, totp: pyotp.TOTP, step: int, n: int, rounds: int = 3
) -> dict[str, Any]:
    """The Python client and an MCP tool call, each next to a raw request (the load
    generator's, same operation and session) in the same rounds, interleaved: load that
    drifts during the run moves all three alike. Each figure is its median round."""
    import mcp

    from airlock.client import AirlockClient
    from airlock.clients._wallet import HeldSession
    from airlock.mcp.server import build_server

    async with AirlockClient(socket) as airlock:
        created = await airlock.submit_request(["mail"], "mcp benchmark")
        await airlock.approve(created.code, totp.at(step * 30))
        grant = await airlock.await_approval(created, wait=10)
        airlock._wallet.add(HeldSession.from_grant(grant))
        service, op, params = OPERATION
        raw = op_request(grant.token)
        tool = f"{service}_{op}"
        seen: dict[str, list[dict[str, Any]]] = {"raw": [], "client": [], "mcp": []}
        async with mcp.Client(build_server(airlock)) as session:
            for _ in range(rounds):
                seen["raw"].append(drive(socket, raw, clients=1, per_client=n))
                seen["client"].append(
                    await _timed_cpu(lambda: airlock.call(service, op, params), n)
                )
                seen["mcp"].append(await _timed_cpu(lambda: session.call_tool(tool, params), n))
    raw_request, direct, via_mcp = (_median_round(seen[k]) for k in ("raw", "client", "mcp"))
    return {
        "raw_request": raw_request,
        "python_client": direct,
        "mcp_tool_call": via_mcp,
        "python_client_cpu_overhead_us": round(
            direct["cpu_us_per_call"] - raw_request["loadgen_cpu_us_per_op"], 1
        ),
        "mcp_overhead_p50_ms": round(via_mcp["p50_ms"] - direct["p50_ms"], 3),
    }


def _child_running(module: str) -> int:
    """The pid of this process's child whose command line names *module*."""
    for tasks in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (tasks / "children").read_text().split():
            if module in Path(f"/proc/{pid}/cmdline").read_text():
                return int(pid)
    raise RuntimeError(f"no child process runs {module}")


async def mcp_stdio(home: Path, socket: Path, n: int, rounds: int = 3) -> dict[str, Any]:
    """``airlock_status`` (one GET, no session) as an MCP tool call in this process and
    through ``airlock mcp`` in a subprocess on stdio, as an agent runs it, interleaved:
    what the pipes and the second process add to each call, and that process's CPU."""
    import mcp

    from airlock.client import AirlockClient
    from airlock.mcp.server import build_server

    env = {**os.environ, "AIRLOCK_HOME": str(home), "AIRLOCK_SOCKET": str(socket)}
    server = mcp.StdioServerParameters(command=sys.executable, args=["-m", "airlock.mcp"], env=env)
    seen: dict[str, list[dict[str, Any]]] = {"in_process": [], "stdio": []}
    airlock = AirlockClient(socket)
    async with airlock, mcp.Client(build_server(airlock)) as local, mcp.Client(server) as remote:
        pid = _child_running("airlock.mcp")
        for _ in range(rounds):
            seen["in_process"].append(
                await _timed_cpu(lambda: local.call_tool("airlock_status", {}), n)
            )
            cpu = process_cpu_seconds(pid)
            figures = await _timed_cpu(lambda: remote.call_tool("airlock_status", {}), n)
            used = process_cpu_seconds(pid) - cpu
            figures["server_cpu_us_per_call"] = round(used / (n + min(20, n) + 1) * 1e6, 1)
            seen["stdio"].append(figures)
    in_process, stdio = _median_round(seen["in_process"]), _median_round(seen["stdio"])
    return {
        "airlock_status_in_process": in_process,
        "airlock_status_stdio": stdio,
        "stdio_hop_p50_ms": round(stdio["p50_ms"] - in_process["p50_ms"], 3),
    }


def _daemon(
    home: Path, maildir: Path, command: list[str] | None = None
) -> tuple[LocalDaemon, pyotp.TOTP]:
    home.mkdir(parents=True, exist_ok=True)
    config = {
        "services": {"mail": {"connector": "maildir", "path": str(maildir)}},
        "permissions": {"rate_limit": 100_000},
        "dashboard": {"listen": "off"},
    }
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    daemon = LocalDaemon(home, command=command)
    daemon.paths.ensure_data_dirs()
    secret = pyotp.random_base32()
    save_secret(daemon.paths.totp_file, secret)
    return daemon, pyotp.TOTP(secret)


async def _load(
    daemon: LocalDaemon, totp: pyotp.TOTP, step: int, n: int, clients: int, per_client: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    token = await open_session(daemon.paths.socket, totp, step)
    assert daemon.proc is not None
    request = op_request(token)
    drive(daemon.paths.socket, request, clients=1, per_client=100)  # warm-up
    single = drive(
        daemon.paths.socket, request, clients=1, per_client=n, server_pid=daemon.proc.pid
    )
    many = drive(
        daemon.paths.socket,
        request,
        clients=clients,
        per_client=per_client,
        server_pid=daemon.proc.pid,
    )
    return single, many


async def run(n: int, clients: int, per_client: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="airlock-bench-"))
    try:
        maildir = settled_maildir(home)
        baseline = await direct_baseline(maildir, n)
        in_process = [sys.executable, str(Path(__file__).with_name("_in_process_serve.py"))]
        daemon, totp = _daemon(home / "no-hop", maildir, in_process)
        with daemon:
            step = int(time.time() // 30)
            no_hop_single, no_hop_many = await _load(daemon, totp, step, n, clients, per_client)
        daemon, totp = _daemon(home / "daemon", maildir)
        with daemon:
            now_step = int(time.time() // 30)
            # Each code works once, in increasing step order: three steps in the window.
            single, many = await _load(daemon, totp, now_step - 1, n, clients, per_client)
            latency = await approval_latency(daemon.paths.socket, totp, [now_step])
            mcp_figures = await mcp_overhead(
                daemon.paths.socket, totp, now_step + 1, max(50, n // 4)
            )
            mcp_figures["stdio"] = await mcp_stdio(
                daemon.home, daemon.paths.socket, max(50, n // 4)
            )
        bare = bare_aiohttp(home, clients, per_client, n)
        overhead = round(single["p50_ms"] - baseline["p50_ms"], 3)
        no_hop_overhead = round(no_hop_single["p50_ms"] - baseline["p50_ms"], 3)
        ratio = round(many["ops_per_s"] / bare[f"{clients}_clients"]["ops_per_s"], 3)
        hop_loss = round(1 - many["ops_per_s"] / no_hop_many["ops_per_s"], 3)
        client_overhead = round(
            mcp_figures["python_client"]["p50_ms"] - mcp_figures["raw_request"]["p50_ms"], 3
        )
        return {
            "benchmark": "gateway",
            "operation": ".".join(OPERATION[:2]),
            "connector_in_process": baseline,
            "gateway_1_client": single,
            f"gateway_{clients}_clients": many,
            "without_connector_host_process": {
                "gateway_1_client": no_hop_single,
                f"gateway_{clients}_clients": no_hop_many,
                "overhead_p50_ms": no_hop_overhead,
            },
            "connector_host_hop": {
                "p50_ms": round(single["p50_ms"] - no_hop_single["p50_ms"], 3),
                f"throughput_loss_at_{clients}": hop_loss,
            },
            "bare_aiohttp": bare,
            "overhead_p50_ms": overhead,
            f"throughput_ratio_to_bare_at_{clients}": ratio,
            "python_client_overhead_p50_ms": client_overhead,
            "approval_latency": latency,
            "mcp": mcp_figures,
            "targets": {
                "overhead_p50_ms": TARGET_OVERHEAD_WITH_HOP_MS,
                "overhead_p50_ms_without_hop": TARGET_OVERHEAD_MS,
                "hop_throughput_loss": TARGET_HOP_THROUGHPUT_LOSS,
                "throughput_ratio_to_bare": TARGET_RATIO,
                "python_client_overhead_p50_ms": TARGET_CLIENT_MS,
                "mcp_tool_call_p50_ms": TARGET_MCP_MS,
            },
            "meets_targets": {
                "overhead": overhead <= TARGET_OVERHEAD_WITH_HOP_MS,
                "overhead_without_hop": no_hop_overhead <= TARGET_OVERHEAD_MS,
                "hop_throughput_loss": hop_loss <= TARGET_HOP_THROUGHPUT_LOSS,
                "throughput": ratio >= TARGET_RATIO,
                "python_client": client_overhead <= TARGET_CLIENT_MS,
                "mcp": mcp_figures["mcp_tool_call"]["p50_ms"] <= TARGET_MCP_MS,
            },
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=1000, help="sequential operations per figure")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--per-client", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.ops, args.clients, args.per_client)), indent=2))


if __name__ == "__main__":
    main()
