"""A load generator that costs little CPU: raw keep-alive HTTP/1.1 over a Unix socket.

An HTTP client library (aiohttp, httpx) spends more CPU per request than the daemon it
measures, so on two cores it measures itself. This one sends pre-encoded requests on N
plain sockets multiplexed with ``selectors`` and parses only the status line and
``Content-Length`` of each answer. It reports its own CPU time next to the server's
(read from ``/proc/PID/stat``), so a reader can check that it cost less than what it drove.
"""

from __future__ import annotations

import os
import selectors
import socket
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")


def request_bytes(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: airlock"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in {"POST", "PUT"}:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of *pid* so far (fields 14 and 15 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class _Conn:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    sent_at: float = 0.0
    done: int = 0


class _Bad(Exception):
    pass


def _take_response(conn: _Conn) -> bool:
    """Remove one complete response from the buffer; False when it has not all arrived."""
    head_end = conn.buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = bytes(conn.buf[:head_end])
    status = head[9:12]
    if status != b"200":
        raise _Bad(
            head.split(b"\r\n", 1)[0].decode(errors="replace")
            + " "
            + conn.buf[head_end + 4 : head_end + 300].decode(errors="replace")
        )
    lower = head.lower()
    at = lower.find(b"content-length:")
    if at < 0:
        raise _Bad("response without Content-Length")
    length = int(lower[at + 15 : lower.find(b"\r\n", at) if b"\r\n" in lower[at:] else None])
    total = head_end + 4 + length
    if len(conn.buf) < total:
        return False
    del conn.buf[:total]
    return True


def drive(
    socket_path: Path,
    request: bytes,
    *,
    clients: int,
    per_client: int,
    server_pid: int | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """Send *per_client* requests on each of *clients* keep-alive connections, one in
    flight per connection; return throughput, latency and the CPU both sides spent.
    With *seconds*, a connection sends no more once that long has passed (*per_client*
    then caps it): servers of different speeds driven for the same time are exposed
    alike to what else the machine does meanwhile."""
    selector = selectors.DefaultSelector()
    conns = []
    for _ in range(clients):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(socket_path))
        sock.setblocking(False)
        conn = _Conn(sock)
        conns.append(conn)
        selector.register(sock, selectors.EVENT_READ, conn)
    latencies: list[float] = []
    server_cpu0 = process_cpu_seconds(server_pid) if server_pid else 0.0
    own_cpu0 = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else None
    for conn in conns:
        conn.sent_at = time.perf_counter()
        conn.sock.sendall(request)
    open_conns = clients
    try:
        while open_conns:
            for key, _ in selector.select(timeout=30):
                conn = key.data
                chunk = conn.sock.recv(262144)
                if not chunk:
                    raise _Bad("the server closed a connection")
                conn.buf += chunk
                while _take_response(conn):
                    now = time.perf_counter()
                    latencies.append(now - conn.sent_at)
                    conn.done += 1
                    if conn.done == per_client or (deadline is not None and now >= deadline):
                        selector.unregister(conn.sock)
                        open_conns -= 1
                        break
                    conn.sent_at = now
                    conn.sock.sendall(request)
    finally:
        wall = time.perf_counter() - started
        own_cpu = time.process_time() - own_cpu0
        server_cpu = process_cpu_seconds(server_pid) - server_cpu0 if server_pid else None
        for conn in conns:
            conn.sock.close()
        selector.close()
    ordered = sorted(latencies)
    figures: dict[str, Any] = {
        "clients": clients,
        "requests": len(ordered),
        "ops_per_s": round(len(ordered) / wall, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "loadgen_cpu_us_per_op": round(own_cpu / len(ordered) * 1e6, 1),
    }
    if server_cpu is not None:
        figures["server_cpu_us_per_op"] = round(server_cpu / len(ordered) * 1e6, 1)
    return figures
