"""The daemon answers an agent's operation calls on a fast path of its own (not through
aiohttp's request machinery) until a connection's first other request. Whatever bytes an
agent sends, both must read them alike and answer alike: a request the two split
differently would be a request smuggled past one of them.

Each case goes once on a fresh connection (the fast path's) and once after a
``GET /v1/status`` on the same connection (aiohttp's from then on); the answers must be
the same but for ``Date`` and aiohttp's ``Server``. The fast path sends no ``Server``,
which is how these tests see which one answered."""

from __future__ import annotations

import contextlib
import fcntl
import json
import socket
import struct
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon_harness import Airlock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

STATUS = b"GET /v1/status HTTP/1.1\r\nHost: airlock\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fast: bool
    """Whether the fast path sent it (aiohttp names itself in ``Server``)."""

    @property
    def json(self) -> dict[str, object]:
        found: dict[str, object] = json.loads(self.body)
        return found


def op(
    token: str | None,
    body: bytes = b'{"params": {}}',
    *,
    path: str = "/v1/ops/mail/count_unread",
    extra: str = "",
) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: airlock\r\nContent-Type: application/json\r\n"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    head += f"Content-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def answers(
    socket_path: Path, data: bytes, *, handed_over: bool, timeout: float = 15
) -> list[Answer]:
    """Every answer to *data* on one connection, read until the daemon closes it (the
    last request asks it to) or *timeout*; when *handed_over*, after the answer to a
    ``GET /v1/status`` sent first."""
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(timeout)
        conn.connect(str(socket_path))
        received = bytearray()
        if handed_over:
            conn.sendall(STATUS)
            while not _parse(bytes(received), whole=False):
                received += conn.recv(65536)
            del received[: len(received)]
        conn.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = conn.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
    return _parse(bytes(received))


def _parse(data: bytes, *, whole: bool = True) -> list[Answer]:
    """The answers in *data*; *whole*: it must end with a whole one (else what it has)."""
    found = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep and not whole:
            break
        assert sep, f"an answer cut short: {data[:300]!r}"
        lines = head.decode("latin-1").split("\r\n")
        fields = tuple(
            (name.lower(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:])
        )
        length = int(dict(fields).get("content-length", "0"))
        if len(rest) < length and not whole:
            break
        body, data = rest[:length], rest[length:]
        kept = tuple(sorted(f for f in fields if f[0] not in ("date", "server")))
        fast = "server" not in dict(fields) and not lines[0].startswith("HTTP/1.1 100 ")
        found.append(Answer(int(lines[0].split()[1]), kept, body, fast))
    return found


def both_ways(socket_path: Path, data: bytes) -> tuple[list[Answer], list[Answer]]:
    """The answers on the fast path's connection and on aiohttp's, sent at once."""
    got: dict[bool, list[Answer]] = {}

    def run(handed_over: bool) -> None:
        got[handed_over] = answers(socket_path, data, handed_over=handed_over)

    threads = [threading.Thread(target=run, args=(flag,)) for flag in (False, True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got[False], got[True]


def same(fast: list[Answer], slow: list[Answer]) -> None:
    """Both sides answered the same (bar which one sent it)."""
    assert [_essence(a) for a in fast] == [_essence(a) for a in slow]
    assert not any(a.fast for a in slow), "aiohttp's connection was answered by the fast path"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Airlock, str]]:
    airlock = Airlock(
        tmp_path_factory.mktemp("fast") / "home",
        overrides={
            "daemon": {"idle_timeout": "2s"},
            "permissions": {"rate_limit": 100_000},
        },
    )
    airlock.start()
    with airlock.client() as agent:
        token = airlock.session(agent)["token"]
    yield airlock, token
    airlock.stop()


CLOSE = "Connection: close\r\n"


@pytest.mark.parametrize(
    ("case", "status", "on_fast_path"),
    [
        ("a read", 200, True),
        ("no token", 401, True),
        ("a token nobody issued", 401, True),
        ("a body that is not JSON", 400, True),
        ("a body that is not an object", 400, True),
        ("a parameter the operation does not take", 400, True),
        ("a service not configured", 404, True),
        ("an operation the service does not have", 404, True),
        ("a body nested too deep", 400, True),
        ("a lone surrogate", 400, True),
        ("no body at all", 200, True),
        ("a write without its approval", 403, True),
        ("a body over 1 MiB", 413, False),
        ("chunked", 200, False),
        ("an escaped path", 200, False),
        ("a query string", 200, False),
        ("HTTP/1.0", 200, False),
    ],
)
def test_every_answer_is_the_aiohttp_routes(
    daemon: tuple[Airlock, str], case: str, status: int, on_fast_path: bool
) -> None:
    airlock, token = daemon
    requests = {
        "a read": op(token, extra=CLOSE),
        "no token": op(None, extra=CLOSE),
        "a token nobody issued": op("alk_" + "B" * 43, extra=CLOSE),
        "a body that is not JSON": op(token, b"{not json", extra=CLOSE),
        "a body that is not an object": op(token, b"[1, 2]", extra=CLOSE),
        "a parameter the operation does not take": op(
            token, b'{"params": {"colour": "red"}}', extra=CLOSE
        ),
        "a service not configured": op(token, path="/v1/ops/calendar/count_unread", extra=CLOSE),
        "an operation the service does not have": op(
            token, path="/v1/ops/mail/delete_everything", extra=CLOSE
        ),
        "a body nested too deep": op(
            token, b'{"params": {"folder": ' + b"[" * 40 + b"]" * 40 + b"}}", extra=CLOSE
        ),
        "a lone surrogate": op(token, b'{"params": {"folder": "\\ud800"}}', extra=CLOSE),
        "no body at all": op(token, b"", extra=CLOSE).replace(b"Content-Length: 0\r\n", b""),
        "a write without its approval": op(
            token,
            b'{"params": {"id": "1"}}',
            path="/v1/ops/mail/mark_read",
            extra=CLOSE,
        ),
        "a body over 1 MiB": op(token, b" " * (1024 * 1024 + 1), extra=CLOSE),
        "chunked": (
            b"POST /v1/ops/mail/count_unread HTTP/1.1\r\nHost: airlock\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + b'e\r\n{"params": {}}\r\n0\r\n\r\n'
        ),
        "an escaped path": op(token, path="/v1/ops/mail/count%5Funread", extra=CLOSE),
        "a query string": op(token, path="/v1/ops/mail/count_unread?x=1", extra=CLOSE),
        "HTTP/1.0": op(token, extra=CLOSE).replace(b"HTTP/1.1", b"HTTP/1.0", 1),
    }
    fast, slow = both_ways(airlock.paths.socket, requests[case])
    same(fast, slow)
    assert [a.status for a in fast] == [status], fast
    assert fast[0].fast is on_fast_path
    if status == 200:
        result = fast[0].json["result"]
        assert isinstance(result, dict)
        assert result["folder"] == "INBOX"
        assert result["unread"] > 0
    else:
        assert "error" in fast[0].json


def test_pipelined_calls_are_answered_in_order_and_the_connection_moves_at_another_request(
    daemon: tuple[Airlock, str],
) -> None:
    airlock, token = daemon
    data = (
        op(token)
        + op(token, b"{broken")
        + op(token, path="/v1/ops/mail/list_messages", body=b'{"params": {"limit": 1}}')
        # Another route (its answer the same whoever asks first: the sides run at once).
        + op(None, path="/v1/ops/mail/count_unread/check")
        + op(token, extra=CLOSE)
    )
    fast, slow = both_ways(airlock.paths.socket, data)
    same(fast, slow)
    assert [a.status for a in fast] == [200, 400, 200, 200, 200]
    assert fast[3].json == {"params": {"folder": "INBOX"}}
    # Fast until the other route; aiohttp's from then on, the last call included.
    assert [a.fast for a in fast] == [True, True, True, False, False]


def test_a_call_sent_in_pieces_is_answered_whole(daemon: tuple[Airlock, str]) -> None:
    """A request that has not all arrived goes to aiohttp, which waits for the rest: the
    body is never read before it is all there."""
    airlock, token = daemon
    request = op(token, extra=CLOSE)
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(15)
        conn.connect(str(airlock.paths.socket))
        conn.sendall(request[:-5])
        deadline = time.monotonic() + 15
        while _unread(conn):  # until the daemon has read the first part
            assert time.monotonic() < deadline, "the daemon never read the first part"
            time.sleep(0.01)
        conn.sendall(request[-5:])
        received = b"".join(iter(lambda: conn.recv(65536), b""))
    (answer,) = _parse(received)
    assert answer.status == 200
    assert not answer.fast


def test_an_idle_connection_is_closed_after_the_idle_timeout(
    daemon: tuple[Airlock, str],
) -> None:
    airlock, token = daemon
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(20)
        conn.connect(str(airlock.paths.socket))
        conn.sendall(op(token))
        first = conn.recv(65536)
        started = time.monotonic()
        rest = b"".join(iter(lambda: conn.recv(65536), b""))  # until the daemon closes it
        waited = time.monotonic() - started
    assert _parse(first)[0].status == 200
    assert _parse(first)[0].fast
    assert rest == b""
    assert 1.5 < waited < 10, waited


def test_a_slow_head_gets_the_idle_timeout_once_not_twice(daemon: tuple[Airlock, str]) -> None:
    """A connection idle most of the timeout that then starts a head and never ends it is
    closed when the timeout runs out from its last activity, as a silent one is, not
    after a second timeout started for the head."""
    airlock, token = daemon
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(20)
        conn.connect(str(airlock.paths.socket))
        started = time.monotonic()
        time.sleep(1.5)  # of the daemon's 2 s
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(op(token)[:40])  # a head begun, never ended (or closed already)
        rest = b"".join(iter(lambda: conn.recv(65536), b""))  # until the daemon closes it
        waited = time.monotonic() - started
    assert rest == b""
    assert waited < 3.0, waited  # 2 s from the connect; a fresh timer would make it 3.5


def test_a_connection_closed_before_its_answer_leaves_the_daemon_serving(
    daemon: tuple[Airlock, str],
) -> None:
    airlock, token = daemon
    for _ in range(20):
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(airlock.paths.socket))
            conn.sendall(op(token) * 3)
    fast, slow = both_ways(airlock.paths.socket, op(token, extra=CLOSE))
    same(fast, slow)
    assert fast[0].status == 200


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("with_token", [False, True], ids=["no token", "a session's"])
def test_an_agent_pipelining_calls_cannot_grow_the_daemons_memory(
    daemon: tuple[Airlock, str], with_token: bool
) -> None:
    """One connection, calls sent as fast as the daemon takes them while the answers are
    read: what waits stays within the fast path's 64 KiB mark. Reading resumed at every
    answer, each letting a whole read in: the daemon grew by a GiB in seconds, with or
    without a token, and other agents' calls slowed to half a second."""
    airlock, token = daemon
    assert airlock.proc is not None
    pid = airlock.proc.pid
    calls = op(token if with_token else None) * 1000
    answered = 0
    stop = threading.Event()
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(airlock.paths.socket))
        conn.settimeout(5)

        def read() -> None:
            nonlocal answered
            while not stop.is_set():
                try:
                    data = conn.recv(1 << 20)
                except OSError:
                    return
                if not data:
                    return
                answered += data.count(b"HTTP/1.1 ")

        reader = threading.Thread(target=read, daemon=True)
        start = rss_mib(pid)
        reader.start()
        largest = start
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            conn.sendall(calls)  # blocks while the daemon does not read
            largest = max(largest, rss_mib(pid))
        stop.set()
        conn.shutdown(socket.SHUT_RDWR)
        reader.join(5)
    assert answered > 50, "the flood was not served"  # thousands on a quiet machine
    assert largest - start < 48, f"the daemon grew from {start:.0f} to {largest:.0f} MiB"
    fast, _slow = both_ways(airlock.paths.socket, op(token, extra=CLOSE))
    assert fast[0].status == 200


# -- every head an agent could send: both sides split and answer it alike ------------------

HEAD_NOISE = st.sampled_from(
    [" ", "\t", "\r", "\n", "\r\n", ":", "\x00", "é", "A", "0", "-", "\r\n ", "\r\n\r\n", ","]
)


EXTRA_FIELDS = st.sampled_from(
    [
        "Content-Length: 0",
        "content-length: 14",
        "Content-Length: 014",
        "Content-Length: +14",
        "Content-Length: 14 ",
        "Content-Length: 1 4",
        "Content-Length:14",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: identity",
        "Content-Encoding: gzip",
        "Expect: 100-continue",
        "Upgrade: websocket",
        "Host: ",
        "Host: other",
        "HOST: airlock",
        "Connection: close",
        "Connection: keep-alive, close",
        "Connection: upgrade",
        "Authorization: Bearer alk_" + "C" * 43,
        "Authorization: Basic eDp5",
        "X-Pad:\t v \t",
        "X-Empty:",
        " folded",
    ]
)


@st.composite
def mutated(draw: st.DrawFn, token: str) -> bytes:
    """A valid call with fields added to its head and noise put into it, then a valid
    call that closes."""
    request = op(token).decode("latin-1")
    for field in draw(st.lists(EXTRA_FIELDS, max_size=2)):
        starts = [i + 2 for i in range(len(request)) if request.startswith("\r\n", i)]
        at = draw(st.sampled_from(starts[: request.count("\r\n") - 1]))
        request = request[:at] + field + "\r\n" + request[at:]
    head_end = request.index("\r\n\r\n") + 2
    edits = draw(st.lists(st.tuples(st.integers(0, head_end), HEAD_NOISE), max_size=3))
    for at, noise in sorted(edits, reverse=True):
        request = request[:at] + noise + request[at:]
    if draw(st.booleans()):
        request = request.replace(
            "Content-Length",
            draw(
                st.sampled_from(
                    ["content-length", "Content-Length ", "Content-Length:1\r\nContent-Length", "X"]
                )
            ),
            1,
        )
    return request.encode("utf-8") + op(token, extra=CLOSE)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_mangled_head_is_read_alike_by_both(
    daemon: tuple[Airlock, str], data: st.DataObject
) -> None:
    """aiohttp, meeting a head it cannot parse, answers that with a 400 and drops the
    answers to the requests it read before it in the same read (the fast path answers
    them): its answers are then the last of the fast path's. Otherwise they are all."""
    airlock, token = daemon
    sent = data.draw(mutated(token))
    fast, slow = both_ways(airlock.paths.socket, sent)
    assert slow, "aiohttp did not answer"
    same(fast[len(fast) - len(slow) :], slow)
    if not _unparsable(slow[-1]):
        assert len(fast) == len(slow)


def _essence(answer: Answer) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """An answer to compare. aiohttp's 400 for bytes it cannot parse quotes the line it
    choked on from where its read began (which differs when the fast path answered the
    requests before it): what it points at, from its caret on, is what must agree."""
    if not _unparsable(answer):
        return answer.status, answer.headers, answer.body
    lines = answer.body.split(b"\n")
    if len(lines) < 4 or b"^" not in lines[3]:
        return answer.status, (), answer.body
    pointed = lines[2][lines[3].index(b"^") :]
    return answer.status, (), lines[0] + b" at " + pointed


def _unparsable(answer: Answer) -> bool:
    """aiohttp's own 400 for bytes that are not HTTP (plain text, not Airlock's JSON)."""
    return answer.status == 400 and ("content-type", "text/plain; charset=utf-8") in answer.headers


# -- heads aiohttp refuses or reads differently: the fast path must not take them ----------


@pytest.mark.parametrize(
    "extra",
    [
        "".join(f"X-Pad-{i}: v\r\n" for i in range(130)),  # aiohttp: at most 128 fields
        "Content-Type: text/plain\r\n",  # a second Content-Type (op() sends one)
        "User-Agent: a\r\nUser-Agent: b\r\n",
        "Server: a\r\nServer: a\r\n",
        "Sec-WebSocket-Key1: 1\r\n",
    ],
    ids=["130 fields", "two Content-Types", "two User-Agents", "two Servers", "ws key1"],
)
def test_a_head_aiohttp_refuses_is_refused_on_the_fast_path_too(
    daemon: tuple[Airlock, str], extra: str
) -> None:
    airlock, token = daemon
    fast, slow = both_ways(airlock.paths.socket, op(token, extra=extra + CLOSE))
    same(fast, slow)
    assert [a.status for a in fast] == [400]


def test_proxy_connection_close_ends_the_connection_on_both(
    daemon: tuple[Airlock, str],
) -> None:
    """aiohttp's parser (llhttp) takes ``Proxy-Connection: close`` as ``Connection:
    close``: the request after it on the same connection is never run there."""
    airlock, token = daemon
    data = op(token, extra="Proxy-Connection: close\r\n") + op(token, extra=CLOSE)
    fast, slow = both_ways(airlock.paths.socket, data)
    same(fast, slow)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_no_new_connection_is_served_once_the_daemon_stops(tmp_path: Path) -> None:
    """SIGTERM while a call runs: that call is answered, but a connection made while it
    finishes is refused or not served (the daemon takes no more calls)."""
    import os
    import signal

    airlock = Airlock(tmp_path / "home")
    airlock.start()
    assert airlock.proc is not None
    stopped: list[int] = []
    try:
        with airlock.client() as agent:
            token = airlock.session(agent)["token"]
            agent.post(
                "/v1/ops/mail/count_unread",
                json={"params": {}},
                headers={"Authorization": f"Bearer {token}"},
            )  # the connector host runs now
        for child in _children(airlock.proc.pid):  # the call waits on it while stopped
            os.kill(child, signal.SIGSTOP)
            stopped.append(child)
        running: dict[str, list[Answer]] = {}
        call = op(token, extra=CLOSE)
        worker = threading.Thread(
            target=lambda: running.update(
                got=answers(airlock.paths.socket, call, handed_over=False, timeout=20)
            )
        )
        worker.start()
        time.sleep(1.0)  # the call is running now
        airlock.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        try:  # the socket no longer takes connections, or closes them unserved
            late = answers(airlock.paths.socket, STATUS, handed_over=False, timeout=3)
        except (ConnectionRefusedError, FileNotFoundError):
            late = []
        for child in stopped:
            os.kill(child, signal.SIGCONT)
        stopped.clear()
        worker.join(30)
        airlock.proc.wait(30)
    finally:
        for child in stopped:
            os.kill(child, signal.SIGCONT)
        if airlock.proc.poll() is None:
            airlock.stop()
    assert [a.status for a in running["got"]] == [200]
    assert late == [], "a connection made after SIGTERM was served"


def _unread(conn: socket.socket) -> int:
    """Bytes sent on *conn* that the other end has not read yet (``SIOCOUTQ``)."""
    queued = fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return int(struct.unpack("i", queued)[0])
