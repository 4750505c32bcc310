"""Gateway overhead, throughput, approval latency and MCP tool-call overhead. Prints JSON.

One operation (`count_unread` on a Maildir) is timed several ways:
* the connector called in-process (the baseline: what the work itself costs),
* through a real daemon process on its Unix socket (session check, policies, connector,
  redaction, an fsynced audit record), driven by the raw-socket load generator of
  ``_loadgen.py`` from 1 client and from 32 concurrent clients,
* through the same daemon with the connector host's code on its own event loop
  (``_in_process_serve.py``: the same protocol, no process), which prices the hop to the
  host process every call crosses (a framed JSON request and answer over a socket pair),
* a bare aiohttp app on the same kind of socket and loop (``_bare_aiohttp.py``): the
  ceiling a Python HTTP server reaches here, and the ratio the target is set on,
* through ``AirlockClient`` (the Python client) and as an MCP tool call through the
  in-process MCP server (which calls the daemon).

The three servers run side by side and are driven from 32 clients in turn, ``--rounds``
times (21, the order reversed every other round). Each round gives a ratio to the bare
app and a hop loss from runs seconds apart; the reported figures are the medians of the
rounds' (the 32-client figures shown are the median round's; ``rounds_at_32`` lists every
round). One daemon run against one bare run, as before, let a single lucky or unlucky
baseline decide the verdict: the bare app's figure swings 7,900-27,700 calls/s between
runs here, and within one run the rounds' ratios spread 0.11-0.18 (load ~2) or
0.17-0.22 (load ~1). Five rounds were not enough either: on 2026-12-05 two runs of five,
back to back on the same build, gave medians of 0.307 and 0.396 (rounds 0.297-0.383 and
0.327-0.410), and one of fifteen gave 0.352 (rounds 0.318-0.432). Nor were eleven, on a
machine whose speed came and went within seconds: two ``nox -s bench`` runs on one build,
later that day, gave 0.298 and 0.345 (rounds 0.22-0.47 and 0.26-0.50, the bare app
17,100-31,000 calls/s within each run). Twenty-one rounds, with a session's token for
each nine (``rounds_per_session``: within the rate limit of 100,000 calls a minute),
take the run to ~105 s.

Each server is now driven for the same time in a round (``ROUND_SECONDS``, 0.6 s), not
for the same number of calls. With 200 calls a client each, the bare app's run lasted
~0.23 s against the daemon's ~0.65, and the start and end of a run (32 connections
opened, the clients finishing one by one) weighed on it most: back to back, alternated
(15 pairs), the bare app served 22,000 calls/s in runs of 200 a client and 26,900 in
0.6 s windows (1.13x per pair), the daemon 9,260 and 9,310 (1.05x). So the ratio as
measured until then flattered the gateway by ~8 %: 0.35-0.37 that way, 0.315 and 0.341
in two runs this way, an hour later on the same build.

Where a call's time goes at 32 clients (issue 17, 2026-12-02; this 2-core VM is shared
with other work, and even CPU a call moves with it: the same build measured 130-150 us
a call on the daemon's loop thread at load ~1 and 190-240 at load 2-3; compare figures
taken back to back, alternated):

* The daemon's event-loop thread. py-spy on it: uvloop's own C code (the syscalls)
  ~20 %; aiohttp (parsing, routing, the response) ~30 %; socket writes (``writelines``
  to the host and to the clients) up to a quarter of the samples, because a write to a
  process asleep on the other core wakes it and that is dear on this VM; the gateway the
  rest: admission 8-9 %, the audit append 7-8 % (formatting and scrubbing 3), the host
  link 5-11 %, JSON 5 %, policies 2-4 %, pydantic 2 %. The audit writer thread adds
  15-25 us a call (line formatting, HMAC, write, fdatasync), the connector host process
  55-80 us (on the other core). The bare app needs 35-60 us a call in the same runs.
* Parts switched off one at a time in a diagnostic daemon (an earlier build, when the
  whole call cost 278-311 us at 32 clients / 850-900 at 1): no audit record 167-172 /
  340-370; no connector host 183-206 / 590-610; neither 147-216 / 250-310. So the
  fsynced record and the hop, both required, were ~100-140 us of a call at 32 clients.
* Idle time. The loop thread was idle (neither running nor waiting for a CPU,
  ``/proc/.../schedstat``) 30-36 % of a 32-client run: the calls moved in one wave. With
  the loop's ``select()`` timed (asyncio's loop in a diagnostic daemon), 56 % of the idle
  time had all 32 calls in the host (it got them in one write and answered all in one
  write ~2 ms later) and 27 % all 32 in one audit batch (the group commit's fsync). The
  host now answers in writes of at most 8 (``ANSWERS_PER_WRITE``): idle 0.20 against
  0.32 (medians of 11 alternated runs), 4,461 against 4,239 calls/s, loop CPU 157
  against 146 us a call (smaller batches cost a little of what the overlap gains).
  Splitting the core's requests the same way woke the sleeping host four times as often
  and lost (2,900-3,600 against 4,600-5,000 calls/s); a 1 ms GIL switch interval
  changed nothing measurable. What idles the loop now is mostly a whole audit batch or
  the host's last group in flight with nothing else to do; moving the record's
  formatting to the writer thread would not help, since under the GIL that thread's
  Python work takes the same lock the loop needs.
* The middleware is gone: the uid gate and the JSON errors wrap the server's request
  handler once (``daemon.http.guarded``), so aiohttp skips its per-request middleware
  machinery (~16 % of the loop's samples had been under it and the gatekeeper).

The fast path (2026-12-04, ``daemon/fast_path.py``): an operation call is now read and
answered without aiohttp's request machinery (its task, request and response objects,
stream reader and writer), as the sums above said it must be. Alternated against the
commit before (20 rounds of 32 clients, two daemons side by side): 1.15-1.19x the calls
a second, daemon CPU a call 258 -> 206 and 173 -> 152 us; the single client's overhead
1.1 -> 0.82 ms with the host, 0.78-0.93 -> 0.62 without (bench runs an hour apart).
Per thread at 32 clients (``/proc/.../schedstat``, the same minute; before -> after):
the event-loop thread 162 -> 120 us a call, busy 78 -> 72 % of the run; the audit
writer 28 -> 26 us, and 51 -> 45 us a call waiting for a CPU once woken; the connector
host 80 -> 71 us (of which the Maildir count itself ~25); the load generator ~20.

What stands between that and 0.35: at 35 % of a quick bare run (27,000 calls/s at 34 us)
the daemon would serve 9,500 calls/s, i.e. at most ~210 us of CPU a call for everything
on the two cores (loop, audit writer, host, load generator) packed without a gap. They
take ~236 now, and the loop still idles a quarter of the run, between the waves in which
32 calls cross the host and the audit batch together. Closing it needs a third less CPU
a call across the daemon and the host, not one part trimmed.

Later the same day: the Maildir check of a kept count is three ``stat`` calls on paths
(the host 71 -> 51-58 us a call), and a bench run gave 0.255 (7,092-7,735 calls/s at
119 us of daemon CPU a call). Timed inside a diagnostic daemon, a call at 32 clients took
5.7 ms: 2.9 waiting for the host, 2.3 for its audit batch (a commit 1.3-1.4 ms, its
``fdatasync`` 0.6-0.8). Leaving the ``fdatasync`` out served exactly as many calls
(6,700/s both), and writing records on the loop thread fewer (5,473/s, the loop saturated
at 181 us a call): what limits the daemon is the loop thread's CPU, ~115 us a call, which
cProfile finds spread over dozens of functions of a few us each (the audit fields' JSON
~4.5, their scrubbing ~3.6, reading the call ~4), uvloop's socket calls about a third.
A 0.5 ms GIL switch interval (0.997, alternated) and writing requests to the host at once
while few are in flight there (0.97-1.02) changed nothing.

2026-12-05: latency, not CPU, was what held 32 clients back (they serve 32 / the time a
call takes). A diagnostic daemon without the audit record served 1.37x the calls; with
the record's wait put back as a 1 ms sleep, 1.03x. A batch commit in the writer thread
took ~800 us for ~300 us of work (format 160, write 20, fdatasync 280): the rest was the
thread taking the GIL back from the busy loop after each system call. The daemon's records
now go to a writer process (``security/_audit_writer.py``): 1.17x the calls (alternated),
daemon CPU a call 124 -> 99 us. With the host's call path and the answer's encoding
trimmed after it (1.08 each), this benchmark alone gave 0.336 (rounds 0.280-0.409). Per
thread after: the loop ~103 us a call (79 % busy), the writer process ~23 (mostly
fdatasync in the kernel), the host ~48; ``perf`` on the loop: 75 % interpreter, 11 %
kernel, 3 % uvloop.

Later on 2026-12-05, per-call costs trimmed where py-spy and micro-timings put them: one
timer for every host request's deadline instead of one each (1.7 us), frozen dataclasses
made once or not frozen (a ten-field one costs 1.14 us to make, unfrozen 0.23), JSON
encoders made once (an audit record's fields 3.8 -> 2.7 us): 1.19x the calls alternated,
daemon CPU a call 102 -> 83 us. Per thread after: the loop 79 us a call (77 % busy, 14
waiting for a CPU), the writer 21.5, the host 33 (of which its Maildir check's three
``stat`` calls ~6). The loop's profile is now flat: uvloop and the socket calls ~25 %,
reading the call and its body ~10, admission (token, policies, params) ~13, the host
round trip ~12, the audit record ~13 (its fields' scrub and JSON ~8).

Still later that day: JSON bytes read without ``json.loads``'s encoding guess
(``read_json``), a connection's repeated head not parsed again (``CallReader``), the
host channel's frames read a read at a time (``FrameReader``): 1.067x, daemon CPU a call
85 -> 75 us; the audit writer in a session of its own (the kernel's autogroup had it
wait behind the loop and the host each time it woke): 1.047x and 1.033x. What does not
help is moving work from the loop to the writer: every call waits for its batch, and
shipping the fields unscrubbed for the writer to scrub (loop CPU 72 -> 65 us a call) served
0.91-0.95x the calls. Per thread after (schedstat, ~10,600 calls/s): the loop 66-72 us a
call (76 % busy, 12 waiting for a CPU), the writer 19-22 (12-18 waiting), the host 29-32.

2026-12-05, where the time of a call at 32 clients goes (a daemon with timestamps at
each step, 20,000 calls, medians): ~2.5 ms in all, of which ~0.27 waiting in the loop
before its turn, ~0.85 for the host's answer (it runs a wave of ~10 requests one after
another at ~36 us of CPU each, and answers them eight at a time), ~0.1 for the loop to
take the answer up, and ~1.1 for the audit batch (the writer's cycle ~0.54 ms, its
``fdatasync`` 0.27-0.28; a record waits for the cycle under way, then its own). What moves
the figure, each alternated against the same build over 36-72 rounds:

* the writer's ``fdatasync`` left out: 1.20x; replaced by a sleep as long: 1.08x. The
  durable write costs in its wait and in the kernel's own work for it (the journal), and
  neither can go (a record is on disk before its answer). Overwriting a preallocated
  file in place (no journal commit), the records also appended for readers: 1.03x, not
  worth a second file to recover from.
* the loop's CPU: the ``operation`` record's fields written by hand in sorted order
  (``gateway.operation_record``): 6-8 us less a call, 1.00-1.03x. Nor did the loop at
  nice -5 (1.04x) or a 0.2 ms scheduler slice (1.02x) do much more.
* the writer's waits for a CPU (16-29 us a record): gone with SCHED_FIFO (a test, root
  only), and the throughput the same; its autogroup at nice -10 or a 0.1 ms slice did not
  shorten them.
* the host's CPU: its Maildir check's three ``stat`` calls left out (~9 of its ~36 us a
  request; a test only: the check is what keeps a count honest): 1.06x. A microsecond
  of the host's counts about twice one of the loop's, since every call waits for the
  host's wave. The host in a session of its own: 1.01-1.04x, within the noise.

So 32 clients are held back by the latency of two waits every call makes in turn, the
host's wave and the audit's durable write, more than by any one process's CPU.

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
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
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
PERIOD = 15
"""The benchmark daemons' TOTP step in seconds: each approval needs a new step's code."""
APPROVAL_SAMPLES = 5


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


class Codes:
    """TOTP codes for one benchmark daemon: the daemon takes each step's code once, in
    increasing step order, and only within one step of its clock, so a code further ahead
    is waited for (the daemons here use 15-second steps, the shortest the config allows)."""

    def __init__(self, totp: pyotp.TOTP) -> None:
        self.totp = totp
        self.last = -1

    async def next(self) -> str:
        step = max(self.last + 1, int(time.time() // PERIOD))
        early = (step - 1) * PERIOD - time.time()
        if early > 0:
            await asyncio.sleep(early + 0.05)
        self.last = step
        return self.totp.at(step * PERIOD)


async def open_session(socket: Path, codes: Codes) -> str:
    async with client(socket) as agent:
        created = await agent.post("/v1/requests", {"services": ["mail"], "reason": "benchmark"})
        await agent.post(f"/v1/requests/{created['code']}/approve", {"totp": await codes.next()})
        claim = {"X-Airlock-Claim": created["claim"]}
        state = await agent.get(f"/v1/requests/{created['id']}", headers=claim)
        return str(state["session"]["token"])


def op_request(token: str) -> bytes:
    service, op, params = OPERATION
    body = json.dumps({"params": params}).encode()
    return request_bytes(
        "POST", f"/v1/ops/{service}/{op}", body, {"Authorization": f"Bearer {token}"}
    )


@contextlib.contextmanager
def bare_aiohttp(home: Path) -> Iterator[tuple[Path, int]]:
    """A bare aiohttp app (no Airlock) on the same kind of socket: (socket, pid)."""
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
        drive(socket_path, op_request("none"), clients=1, per_client=100)  # warm-up
        yield socket_path, server.pid
    finally:
        server.terminate()
        server.wait()


SESSION_CALLS = 90_000
"""Calls driven with one session's token before the rounds take another's: within its rate
limit of 100,000 a minute, with room for the single client's runs."""


def rounds_per_session(clients: int, per_client: int) -> int:
    """Rounds one session's token serves (9 at 32 clients of at most 300 calls each)."""
    return max(1, SESSION_CALLS // (clients * per_client))


ROUND_SECONDS = 0.6
"""How long each server is driven in a round: all for the same time. Driven for the same
number of calls, the bare app's run lasted a third of the daemon's, and a run's start
and end (connections opened, clients finishing one by one) weighed on it most (see the
module docstring)."""
UNCAPPED = 100_000
"""Calls a client of the bare app may make in a round: more than it makes in one."""


def throughput_rounds(
    servers: dict[str, tuple[Path, list[bytes], int, int]],
    *,
    clients: int,
    rounds: int,
    seconds: float = ROUND_SECONDS,
) -> list[dict[str, Any]]:
    """Each server (name: socket, requests, pid, calls a client at most) driven from
    *clients* clients for *seconds* in turn, *rounds* times, the order reversed every
    other round: a round's figures are runs seconds apart, so one lucky or unlucky run
    cannot decide a ratio alone. A daemon's calls a client cap what one session's token
    serves in a round (:func:`rounds_per_session` rounds a session, the next the
    next's)."""
    found = []
    for index in range(rounds):
        names = sorted(servers, reverse=index % 2 == 1)
        round_figures = {}
        for name in names:
            socket_path, requests, pid, per_client = servers[name]
            session = index // rounds_per_session(clients, per_client)
            round_figures[name] = drive(
                socket_path,
                _for_round(requests, session),
                clients=clients,
                per_client=per_client,
                server_pid=pid,
                seconds=seconds,
            )
        found.append(round_figures)
    return found


def _for_round(requests: list[bytes], session: int) -> bytes:
    return requests[min(session, len(requests) - 1)]


async def approval_latency(socket: Path, codes: Codes, samples: int) -> dict[str, float]:
    """From the person's answer (approve sent) to the agent's long-poll returning the token,
    *samples* times (each with the next code: a wait of up to a step between samples)."""
    latencies = []
    async with client(socket) as agent, client(socket) as person:
        for _ in range(samples):
            code = await codes.next()
            created = await agent.post("/v1/requests", {"services": ["mail"], "reason": "latency"})
            claim = {"X-Airlock-Claim": created["claim"]}
            poll = asyncio.create_task(
                agent.get(f"/v1/requests/{created['id']}?wait=30", headers=claim)
            )
            await asyncio.sleep(0.2)  # the agent is parked in its long-poll
            started = time.perf_counter()
            await person.post(f"/v1/requests/{created['code']}/approve", {"totp": code})
            state = await poll
            latencies.append(time.perf_counter() - started)
            assert state["status"] == "approved"
    return {
        "median_ms": round(statistics.median(latencies) * 1000, 2),
        "min_ms": round(min(latencies) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
        "samples": len(latencies),
    }


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


async def mcp_overhead(socket: Path, codes: Codes, n: int, rounds: int = 3) -> dict[str, Any]:
    """The Python client and an MCP tool call, each next to a raw request (the load
    generator's, same operation and session) in the same rounds, interleaved: load that
    drifts during the run moves all three alike. Each figure is its median round."""
    import mcp

    from airlock.client import AirlockClient
    from airlock.clients._wallet import HeldSession
    from airlock.mcp.server import build_server

    async with AirlockClient(socket) as airlock:
        created = await airlock.submit_request(["mail"], "mcp benchmark")
        await airlock.approve(created.code, await codes.next())
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
        "totp": {"period": PERIOD},
    }
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    daemon = LocalDaemon(home, command=command)
    daemon.paths.ensure_data_dirs()
    secret = pyotp.random_base32()
    save_secret(daemon.paths.totp_file, secret)
    return daemon, Codes(pyotp.TOTP(secret, interval=PERIOD))


async def _load(daemon: LocalDaemon, codes: Codes, n: int) -> tuple[str, dict[str, Any]]:
    """A session's token and the daemon's figures from one client."""
    token = await open_session(daemon.paths.socket, codes)
    assert daemon.proc is not None
    request = op_request(token)
    drive(daemon.paths.socket, request, clients=1, per_client=100)  # warm-up
    single = drive(
        daemon.paths.socket, request, clients=1, per_client=n, server_pid=daemon.proc.pid
    )
    return token, single


async def run(n: int, clients: int, per_client: int, rounds: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="airlock-bench-"))
    try:
        maildir = settled_maildir(home)
        baseline = await direct_baseline(maildir, n)
        in_process = [sys.executable, str(Path(__file__).with_name("_in_process_serve.py"))]
        no_hop, no_hop_codes = _daemon(home / "no-hop", maildir, in_process)
        daemon, codes = _daemon(home / "daemon", maildir)
        with no_hop, daemon, bare_aiohttp(home) as (bare_socket, bare_pid):
            assert daemon.proc is not None
            assert no_hop.proc is not None
            no_hop_token, no_hop_single = await _load(no_hop, no_hop_codes, n)
            token, single = await _load(daemon, codes, n)
            bare_single = drive(
                bare_socket, op_request("none"), clients=1, per_client=n, server_pid=bare_pid
            )
            tokens, no_hop_tokens = [token], [no_hop_token]
            for _ in range(-(-rounds // rounds_per_session(clients, per_client)) - 1):
                tokens.append(await open_session(daemon.paths.socket, codes))
                no_hop_tokens.append(await open_session(no_hop.paths.socket, no_hop_codes))
            seen = throughput_rounds(
                {
                    "gateway": (
                        daemon.paths.socket,
                        [op_request(t) for t in tokens],
                        daemon.proc.pid,
                        per_client,
                    ),
                    "without_host": (
                        no_hop.paths.socket,
                        [op_request(t) for t in no_hop_tokens],
                        no_hop.proc.pid,
                        per_client,
                    ),
                    "bare_aiohttp": (bare_socket, [op_request("none")], bare_pid, UNCAPPED),
                },
                clients=clients,
                rounds=rounds,
            )
            mcp_figures = await mcp_overhead(daemon.paths.socket, codes, max(50, n // 4))
            mcp_figures["stdio"] = await mcp_stdio(
                daemon.home, daemon.paths.socket, max(50, n // 4)
            )
            # Last: a code a step (15 s) after the one before, partly spent above.
            latency = await approval_latency(daemon.paths.socket, codes, APPROVAL_SAMPLES)
        for figures in seen:
            gateway_ops = figures["gateway"]["ops_per_s"]
            figures["ratio"] = round(gateway_ops / figures["bare_aiohttp"]["ops_per_s"], 3)
            figures["hop_loss"] = round(1 - gateway_ops / figures["without_host"]["ops_per_s"], 3)
        # The round whose ratio is the median (an odd number of rounds) speaks for all.
        middle = sorted(seen, key=lambda r: float(r["ratio"]))[len(seen) // 2]
        ratio = round(statistics.median(r["ratio"] for r in seen), 3)
        hop_loss = round(statistics.median(r["hop_loss"] for r in seen), 3)
        many, no_hop_many = middle["gateway"], middle["without_host"]
        bare = {"1_client": bare_single, f"{clients}_clients": middle["bare_aiohttp"]}
        overhead = round(single["p50_ms"] - baseline["p50_ms"], 3)
        no_hop_overhead = round(no_hop_single["p50_ms"] - baseline["p50_ms"], 3)
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
            f"rounds_at_{clients}": [
                {
                    "ratio": r["ratio"],
                    "hop_loss": r["hop_loss"],
                    **{
                        name: {k: r[name][k] for k in ("ops_per_s", "server_cpu_us_per_op")}
                        for name in ("gateway", "without_host", "bare_aiohttp")
                    },
                }
                for r in seen
            ],
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
    parser.add_argument(
        "--per-client", type=int, default=300, help="a daemon's calls a client, at most, a round"
    )
    parser.add_argument("--rounds", type=int, default=21, help="alternated throughput rounds (odd)")
    args = parser.parse_args()
    figures = run(args.ops, args.clients, args.per_client, args.rounds | 1)
    print(json.dumps(asyncio.run(figures), indent=2))


if __name__ == "__main__":
    main()
