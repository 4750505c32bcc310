"""The channel between the core and its connector host, fed hostile and broken input.

The host's side runs on a real socket pair (the same server a host process runs); the
frames are written by hand where the test plays a broken or hostile peer.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel
from tests.core.frames import frames_of
from tests.core.gateway_fixtures import NOTES, Answer, AskParams, Notebook

from airlock.connector_host.keys import HostKeys, seal_host_key
from airlock.connector_host.link import HostLink, Streams
from airlock.connector_host.protocol import (
    MAX_ANSWER_BYTES,
    MAX_REQUEST_BYTES,
    ChannelBroken,
    FrameReader,
    decode_error,
    frame,
)
from airlock.connector_host.server import HostServer
from airlock.errors import (
    ApprovalRequired,
    ConnectorError,
    ConnectorTimeout,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceRateLimited,
    Unauthenticated,
)
from airlock.framework.connectors import Access, Connector, operation
from airlock.framework.spending import Charge, PricedConnector, Quote, SpendSettings, nano_usd
from airlock.passphrase import WrongPassphrase, key_from
from airlock.security.vault import Vault


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (as the rest of the suite does)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def _reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def _frame(obj: Any) -> bytes:
    payload = json.dumps(obj).encode()
    return struct.pack(">I", len(payload)) + payload


_DEEP = b'{"a":' + b"[" * 99_999 + b"]" * 99_999 + b"}"


@pytest.mark.parametrize(
    "data",
    [
        b"",  # closed
        b"\x00\x00",  # cut inside the header
        struct.pack(">I", 10) + b"{}",  # cut inside the frame
        struct.pack(">I", MAX_REQUEST_BYTES + 1),  # over the limit: never read
        struct.pack(">I", 3) + b"{x}",  # not JSON
        _frame([1, 2]),  # not an object
        struct.pack(">I", len(_DEEP)) + _DEEP,  # nested too deeply for the parser
        _frame("text"),
    ],
)
@in_loop
async def test_a_broken_or_oversized_frame_ends_the_channel(data: bytes) -> None:
    with pytest.raises(ChannelBroken):
        await FrameReader(await _reader_of(data), MAX_REQUEST_BYTES).next()


@in_loop
async def test_half_of_a_unicode_pair_crosses_the_channel_and_arrives_mended() -> None:
    """A service's JSON can escape half of a UTF-16 pair alone; no UTF-8 encoder takes
    it, so the sender escapes it and the reader replaces it with U+FFFD, in keys and in
    values nested as deep as a frame can be (a whole pair is left as it is)."""
    half = json.loads('"\\udc00"')
    deep: Any = [f"deep {half}"]
    for _ in range(900):
        deep = [deep]
    sent = {"id": 1, "ok": {f"key {half}": f"a {half} b \U0001f600", "deep": deep}}
    got = await FrameReader(
        await _reader_of(frame(sent, MAX_ANSWER_BYTES)), MAX_ANSWER_BYTES
    ).next()
    assert got["ok"]["key \ufffd"] == "a \ufffd b \U0001f600"
    inner = got["ok"]["deep"]
    for _ in range(900):
        inner = inner[0]
    assert inner == ["deep \ufffd"]
    json.dumps(got, ensure_ascii=False).encode("utf-8")  # what the core answers with


def test_a_host_cannot_answer_with_an_error_only_the_core_may_raise() -> None:
    forged = decode_error({"code": "unauthenticated", "message": "log in again"})
    assert type(forged) is ConnectorError
    assert not isinstance(forged, Unauthenticated | ApprovalRequired)
    assert type(decode_error({"code": "approval_required", "message": "x"})) is ConnectorError
    assert type(decode_error({"code": "not_found", "message": "x"})) is NotFound
    assert type(decode_error({"code": "forbidden", "message": "model not allowed"})) is Forbidden
    assert type(decode_error({"code": "denied", "message": "x"})) is ConnectorError
    assert type(decode_error("nonsense")) is ConnectorError
    assert type(decode_error({"code": 3, "message": None})) is ConnectorError
    limited = decode_error({"code": "service_rate_limited", "message": "slow", "retry_after": 7})
    assert isinstance(limited, ServiceRateLimited)
    assert limited.retry_after == 7
    for endless in ("Infinity", "NaN", "1e999", "-5"):  # what a host's JSON may say
        raw = f'{{"code": "service_rate_limited", "message": "m", "retry_after": {endless}}}'
        wait = decode_error(json.loads(raw))
        assert isinstance(wait, ServiceRateLimited)
        assert wait.retry_after is None, endless
    assert len(decode_error({"code": "service_error", "message": "x" * 10_000}).message) == 2000


class _Served:
    """A HostServer on one end of a socket pair; the test holds the other end raw."""

    def __init__(
        self, tmp_path: Path, connectors: Mapping[str, type[Connector]] | None = None
    ) -> None:
        known = connectors or {"notebook": Notebook}
        self.server = HostServer(known, HostKeys(tmp_path / "connectors"))
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_unix_connection(sock=theirs)
        self.task = asyncio.create_task(self.server.serve(reader, writer))
        return await asyncio.open_unix_connection(sock=ours)

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def _ask(
    pair: tuple[asyncio.StreamReader, asyncio.StreamWriter], message: dict[str, Any]
) -> dict[str, Any]:
    reader, writer = pair
    writer.write(_frame(message))
    await writer.drain()
    return await asyncio.wait_for(frames_of(reader, MAX_ANSWER_BYTES).next(), 5)


@in_loop
async def test_the_host_answers_bad_requests_with_errors_and_a_bad_id_with_a_hang_up(
    tmp_path: Path,
) -> None:
    served = _Served(tmp_path)
    async with served as pair:
        unknown = await _ask(pair, {"id": 1, "kind": "format_disk"})
        assert unknown["error"]["code"] == InvalidInput.code
        no_service = await _ask(pair, {"id": 2, "kind": "call", "service": "nope"})
        assert no_service["error"]["code"] == NotFound.code
        too_many = {f"f{i}": "v" for i in range(40)}
        fields = await _ask(
            pair, {"id": 3, "kind": "set_credentials", "service": "n", "fields": too_many}
        )
        assert fields["error"]["code"] == InvalidInput.code
        reader, writer = pair
        writer.write(_frame({"id": "1; drop", "kind": "ping"}))
        await writer.drain()
        with pytest.raises(ChannelBroken):
            await asyncio.wait_for(frames_of(reader, MAX_ANSWER_BYTES).next(), 5)


@in_loop
async def test_a_call_runs_the_connector_and_answers_its_result_as_json(tmp_path: Path) -> None:
    NOTES.clear()
    NOTES["todo"] = "buy milk"
    served = _Served(tmp_path)
    async with served as pair:
        configured = await _ask(
            pair,
            {
                "id": 1,
                "kind": "configure",
                "services": {"notes": {"connector": "notebook", "settings": {}}},
            },
        )
        assert configured["ok"]["services"] == ["notes"]
        answer = await _ask(
            pair,
            {
                "id": 2,
                "kind": "call",
                "service": "notes",
                "operation": "read_note",
                "params": {"name": "todo"},
            },
        )
        assert answer["ok"]["result"] == {"name": "todo", "text": "buy milk"}
        bad = await _ask(
            pair,
            {
                "id": 3,
                "kind": "call",
                "service": "notes",
                "operation": "read_note",
                "params": {"name": "todo", "extra": 1},
            },
        )
        assert bad["error"]["code"] == InvalidInput.code


class _Garbage:
    """A 'host' that answers every request with bytes that are not a frame."""

    async def connect(self) -> Streams:
        ours, theirs = socket.socketpair()
        theirs.sendall(struct.pack(">I", MAX_ANSWER_BYTES + 1))
        self.theirs = theirs
        return await asyncio.open_unix_connection(sock=ours)

    async def restart(self) -> None:
        pass

    async def close(self) -> None:
        self.theirs.close()


@in_loop
async def test_a_host_that_breaks_the_protocol_fails_the_call_cleanly() -> None:
    gone: list[str] = []

    async def on_gone(reason: str) -> None:
        gone.append(reason)

    link = HostLink(_Garbage(), timeout=5, on_gone=on_gone)
    with pytest.raises(ConnectorError, match="connector host stopped"):
        await link.request("ping")
    await asyncio.sleep(0)
    assert gone
    assert "over the" in gone[0]
    await link.close()


@in_loop
async def test_the_hosts_key_sealed_by_the_passphrase_opens_only_with_it(tmp_path: Path) -> None:
    directory = tmp_path / "connectors"
    keys = HostKeys(directory)
    key = keys.load()
    assert key is not None
    Vault(keys.vault_file, key).set("mail", {"password": "hunter2"})
    assert (directory / "vault.key").stat().st_mode & 0o777 == 0o600
    assert seal_host_key(directory, key_from("correct horse"))
    assert not (directory / "vault.key").exists()
    assert keys.load() is None, "a sealed key is not on disk in the clear"

    server = HostServer({}, keys)
    assert server.vault.locked
    with pytest.raises(WrongPassphrase):
        await server._unlock({"passphrase": "wrong horse"})
    assert server.vault.locked
    await server._unlock({"passphrase": "correct horse"})
    assert server.vault.get("mail") == {"password": "hunter2"}


@in_loop
async def test_a_cancelled_request_stops_the_operation_in_the_host(tmp_path: Path) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    class Slow(Notebook):
        name = "slow"

        async def check(self) -> Any:
            started.set()
            try:
                await asyncio.sleep(60)
            finally:
                stopped.set()

    server = HostServer({"slow": Slow}, HostKeys(tmp_path / "c"))

    served = _Served(tmp_path)
    served.server = server
    async with served as (reader, writer):
        await _ask(
            (reader, writer),
            {"id": 1, "kind": "configure", "services": {"s": {"connector": "slow"}}},
        )
        writer.write(_frame({"id": 2, "kind": "check", "service": "s"}))
        await writer.drain()
        await asyncio.wait_for(started.wait(), 5)
        writer.write(_frame({"kind": "cancel", "target": 2}))
        await writer.drain()
        await asyncio.wait_for(stopped.wait(), 5)


class Till(PricedConnector):
    """A priced service that counts the calls it was sent."""

    name = "till"
    title = "A priced service"
    settings_model = SpendSettings
    sent: ClassVar[list[str]] = []

    @operation(access=Access.SPEND, params=AskParams, result=Answer, description="Ask.")
    async def ask(self, params: AskParams) -> Answer:
        Till.sent.append(params.prompt)
        return Answer(text="42")

    async def quote(self, operation: str, params: BaseModel) -> Quote:
        return Quote(usd=0.01, facts={"model": "m"})

    def charge(self, operation: str, params: BaseModel, result: BaseModel) -> Charge:
        return Charge(usd=0.004)


async def _frames(
    pair: tuple[asyncio.StreamReader, asyncio.StreamWriter], message: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every frame of a request answered with several, up to its ``ok`` or error."""
    reader, writer = pair
    writer.write(_frame(message))
    await writer.drain()
    frames = []
    while True:
        frame = await asyncio.wait_for(frames_of(reader, MAX_ANSWER_BYTES).next(), 5)
        frames.append(frame)
        if "ok" in frame or "error" in frame:
            return frames


@in_loop
async def test_a_priced_call_is_sent_only_when_its_quote_fits_the_ceiling(tmp_path: Path) -> None:
    Till.sent.clear()
    served = _Served(tmp_path, {"till": Till})
    cent = nano_usd("0.01")
    async with served as pair:
        services = {"llm": {"connector": "till", "settings": {"max_usd": 1}}}
        assert "ok" in await _ask(pair, {"id": 1, "kind": "configure", "services": services})
        ask = {"kind": "priced", "service": "llm", "operation": "ask", "streamed": False}
        over = await _frames(
            pair, {"id": 2, **ask, "params": {"prompt": "a"}, "ceiling_nano": cent - 1}
        )
        assert [f.get("quote", {}).get("usd") for f in over[:1]] == [0.01]
        assert over[1:] == [{"id": 2, "ok": {}}]
        assert Till.sent == [], "a call over the ceiling was sent"
        within = await _frames(
            pair, {"id": 3, **ask, "params": {"prompt": "b"}, "ceiling_nano": cent}
        )
        assert Till.sent == ["b"]
        assert within[1]["result"] == {"text": "42"}
        assert within[1]["charge"]["usd"] == 0.004
        missing = await _frames(pair, {"id": 4, **ask, "params": {"prompt": "c"}})
        assert missing[-1]["error"]["code"] == InvalidInput.code
        assert Till.sent == ["b"]


class Dribble(PricedConnector):
    """A streamed service whose second chunk waits (blocking, as parsing a buffered answer
    would) until the first one has reached the other end of the channel."""

    name = "dribble"
    title = "A streamed priced service"
    settings_model = SpendSettings
    first_seen = threading.Event()

    @operation(access=Access.SPEND, params=AskParams, result=Answer, description="Ask.")
    async def ask(self, params: AskParams) -> Answer:
        return Answer(text="42")

    async def quote(self, operation: str, params: BaseModel) -> Quote:
        return Quote(usd=0.01)

    async def stream(self, operation: str, params: BaseModel) -> AsyncIterator[Any]:
        yield {"text": "4"}
        # No await in between: the event loop does not get a turn here.
        yield {"text": "2" if Dribble.first_seen.wait(5) else "the first chunk was held back"}
        yield Charge(usd=0.001)


@in_loop
async def test_a_streamed_chunk_leaves_the_host_before_the_connector_goes_on(
    tmp_path: Path,
) -> None:
    Dribble.first_seen.clear()
    server = HostServer({"dribble": Dribble}, HostKeys(tmp_path / "connectors"))
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=theirs)
    serving = asyncio.create_task(server.serve(reader, writer))
    chunks: list[Any] = []

    def read_frames() -> None:
        stream = ours.makefile("rb")
        while True:
            (size,) = struct.unpack(">I", stream.read(4))
            message = json.loads(stream.read(size))
            if "chunk" in message:
                chunks.append(message["chunk"])
                Dribble.first_seen.set()
            if message.get("id") == 2 and ("ok" in message or "error" in message):
                return

    services = {"llm": {"connector": "dribble", "settings": {"max_usd": 1}}}
    ours.sendall(_frame({"id": 1, "kind": "configure", "services": services}))
    ask = {"kind": "priced", "service": "llm", "operation": "ask", "streamed": True}
    ours.sendall(_frame({"id": 2, **ask, "params": {"prompt": "?"}, "ceiling_nano": 10**9}))
    try:
        await asyncio.wait_for(asyncio.to_thread(read_frames), 10)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        ours.close()
    assert chunks == [{"text": "4"}, {"text": "2"}]


class _Burst:
    """A host that answers a streamed request with all its frames in one write."""

    frames = 50

    def __init__(self) -> None:
        self.theirs: socket.socket | None = None

    async def connect(self) -> Streams:
        ours, self.theirs = socket.socketpair()
        return await asyncio.open_unix_connection(sock=ours)

    def answer(self, rid: int) -> None:
        assert self.theirs is not None
        burst = [_frame({"id": rid, "chunk": {"n": n}}) for n in range(self.frames)]
        self.theirs.sendall(b"".join([*burst, _frame({"id": rid, "ok": {}})]))

    async def restart(self) -> None:
        pass

    async def close(self) -> None:
        if self.theirs is not None:
            self.theirs.close()


@in_loop
async def test_a_streams_first_frame_reaches_its_consumer_before_the_rest_are_decoded() -> None:
    """Frames that arrive together (the host writes a turn's chunks at once) are handed
    over one at a time: the agent's first chunk does not wait for the reader to decode
    the whole burst."""
    host = _Burst()
    link = HostLink(host, timeout=5)
    stream = link.stream("priced", service="llm")

    async def take_first() -> tuple[dict[str, Any], int]:
        """The first frame, and how many of the rest were decoded by then."""
        message = await anext(stream)
        waiting = link._waiting[1].frames
        assert waiting is not None
        return message, len(waiting)

    first = asyncio.ensure_future(take_first())
    await asyncio.sleep(0.05)  # the request is written and waits for its answer
    host.answer(1)
    message, decoded = await asyncio.wait_for(first, 5)
    assert message["chunk"] == {"n": 0}
    assert decoded == 0, f"the reader decoded {decoded} more frames first"
    rest = [m["chunk"]["n"] async for m in stream]
    assert rest == list(range(1, _Burst.frames))
    await link.close()


class _Trickle(_Burst):
    """A host that sends a stream's frames one at a time, when the test says."""

    def send(self, rid: int, n: int) -> None:
        assert self.theirs is not None
        self.theirs.sendall(_frame({"id": rid, "chunk": {"n": n}}))

    def finish(self, rid: int) -> None:
        assert self.theirs is not None
        self.theirs.sendall(_frame({"id": rid, "ok": {}}))


@in_loop
async def test_a_stream_the_host_stops_feeding_ends_with_a_timeout() -> None:
    """A service gone quiet mid-answer: the call is stopped after the link's timeout of
    silence, with an error that says so (not left waiting for ever)."""
    host = _Trickle()
    link = HostLink(host, timeout=0.3)
    stream = link.stream("priced", service="llm")
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)  # the request is written and waits for its answer
    host.send(1, 0)
    assert (await asyncio.wait_for(first, 5))["chunk"] == {"n": 0}
    with pytest.raises(ConnectorTimeout, match=r"sent nothing for 0\.3s"):
        await asyncio.wait_for(anext(stream), 5)
    await link.close()


@in_loop
async def test_a_stream_times_out_on_silence_only_not_on_its_length_or_a_slow_reader() -> None:
    """The timeout counts the silence the consumer waits through: a stream longer than
    the timeout whose frames keep coming is not cut, nor one whose consumer (an agent
    reading slowly) left frames waiting for longer than the timeout."""
    host = _Trickle()
    link = HostLink(host, timeout=1.0)
    stream = link.stream("priced", service="llm")
    got: list[int] = []
    for n in range(5):  # 1.5 s of frames, each 0.3 s after the last
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.3)  # (the first time, the request is written meanwhile)
        host.send(1, n)
        got.append((await asyncio.wait_for(waiting, 5))["chunk"]["n"])
    host.send(1, 5)
    host.send(1, 6)
    await asyncio.sleep(1.5)  # the reader is away for longer than the timeout
    got.append((await anext(stream))["chunk"]["n"])
    got.append((await anext(stream))["chunk"]["n"])
    waiting = asyncio.ensure_future(anext(stream))  # nothing here: a new wait begins
    await asyncio.sleep(0.5)
    host.send(1, 7)
    got.append((await asyncio.wait_for(waiting, 5))["chunk"]["n"])
    host.finish(1)
    assert [m async for m in stream] == []
    assert got == list(range(8))
    await link.close()


def _sent_so_far(sock: socket.socket) -> list[dict[str, Any]]:
    """The frames the link has written to the host's end of the pair until now."""
    sock.setblocking(False)
    data = b""
    while True:
        try:
            data += sock.recv(65536)
        except BlockingIOError:
            break
    frames = []
    while data:
        (size,) = struct.unpack(">I", data[:4])
        frames.append(json.loads(data[4 : 4 + size]))
        data = data[4 + size :]
    return frames


@in_loop
async def test_every_request_times_out_at_its_own_deadline_and_no_sooner() -> None:
    """One timer serves every request's deadline: a request with a short one, sent
    after one with a long one, fails at its own; the long one is not cut short by it,
    and a request answered in time is not expired."""
    host = _Trickle()
    link = HostLink(host, timeout=5)
    loop = asyncio.get_running_loop()
    start = loop.time()
    slow = asyncio.ensure_future(link.request("ping", within=0.8))
    await asyncio.sleep(0.05)
    quick = asyncio.ensure_future(link.request("ping", within=0.2))
    with pytest.raises(ConnectorTimeout, match=r"longer than 0\.2s"):
        await asyncio.wait_for(quick, 5)
    assert not slow.done(), "the long deadline went with the short one"
    answered = asyncio.ensure_future(link.request("ping", within=0.3))
    await asyncio.sleep(0.05)
    assert host.theirs is not None
    rid = _sent_so_far(host.theirs)[-1]["id"]
    host.theirs.sendall(_frame({"id": rid, "ok": {"pid": 7}}))
    assert await asyncio.wait_for(answered, 5) == {"pid": 7}
    with pytest.raises(ConnectorTimeout, match=r"longer than 0\.8s"):
        await asyncio.wait_for(slow, 5)
    assert loop.time() - start >= 0.79
    await link.close()


@in_loop
async def test_answers_that_arrive_a_few_bytes_at_a_time_are_read_whole_and_in_order() -> None:
    """However the host's bytes are cut up on the way, each answer reaches its own
    request whole; an answer for nobody, or whose id is ``true`` rather than a number,
    answers no request."""
    host = _Trickle()
    link = HostLink(host, timeout=5)
    first = asyncio.ensure_future(link.request("ping"))
    second = asyncio.ensure_future(link.request("ping"))
    await asyncio.sleep(0.05)
    assert host.theirs is not None
    ids = [sent["id"] for sent in _sent_so_far(host.theirs)]
    data = b"".join(
        [
            _frame({"id": True, "ok": {"pid": 666}}),
            _frame({"id": 999, "ok": {"pid": 666}}),
            _frame({"id": ids[1], "ok": {"pid": 2}}),
            _frame({"id": ids[0], "ok": {"pid": 1}}),
        ]
    )
    for start in range(0, len(data), 3):
        host.theirs.sendall(data[start : start + 3])
        await asyncio.sleep(0.001)
    assert await asyncio.wait_for(first, 5) == {"pid": 1}
    assert await asyncio.wait_for(second, 5) == {"pid": 2}
    await link.close()


def test_a_link_used_again_on_a_new_event_loop_still_times_its_requests_out() -> None:
    """A request still waiting when its event loop ended leaves the deadlines' timer on
    that dead loop; the link, used again on another loop, must not take that timer for
    its own and wait for ever."""
    host = _Trickle()  # answers nothing unless told
    link = HostLink(host, timeout=0.3)

    async def left_waiting() -> None:
        waiting = asyncio.ensure_future(link.request("ping"))
        await asyncio.sleep(0.05)  # sent; the loop ends with it unanswered
        assert not waiting.done()

    async def again() -> None:
        with pytest.raises(ConnectorTimeout):
            await asyncio.wait_for(link.request("ping"), 5)
        await link.close()

    asyncio.run(left_waiting())
    asyncio.run(again())
