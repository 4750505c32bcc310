"""The client's HTTP/1.1 transport against a socket that answers with bytes we choose:
the shapes of answer a daemon may send, keep-alive, and what is refused."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock import errors
from airlock.clients._http import DaemonConnection
from airlock.clients._wire import MAX_ANSWER

Script = list[bytes | None]  # one answer per request; None closes without answering


@pytest.fixture
def sock() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sock") as d:
        yield Path(d) / "wire.sock"


def json_answer(body: bytes, *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join([*head, *extra]) + "\r\n\r\n").encode() + body


async def serve(
    sock: Path, answers: Script, seen: list[bytes], connections: list[int]
) -> asyncio.Server:
    """Answer each request in turn from *answers*, recording what came in."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                seen.append(head + await reader.readexactly(length))
                answer = answers.pop(0)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    return await asyncio.start_unix_server(handle, path=str(sock))


def exchange(
    sock: Path, answers: Script, calls: int, **kw: object
) -> tuple[list[object], list[bytes], int]:
    """Make *calls* requests of /v1/x (GETs, POSTs with a body) on one connection pool;
    the answers (or errors), the requests the server read, and its connection count."""
    seen: list[bytes] = []
    connections: list[int] = []

    async def main() -> list[object]:
        server = await serve(sock, answers, seen, connections)
        conn = DaemonConnection(sock, timeout=2)
        out: list[object] = []
        try:
            for _ in range(calls):
                try:
                    method = "POST" if "body" in kw else "GET"
                    out.append(await conn.request(method, "/v1/x", **kw))  # type: ignore[arg-type]
                except errors.AirlockError as exc:
                    out.append(exc)
        finally:
            await conn.aclose()
            server.close()
        return out

    return asyncio.run(main()), seen, len(connections)


def test_requests_share_one_kept_alive_connection(sock: Path) -> None:
    out, seen, connections = exchange(sock, [json_answer(b'{"n": 1}'), json_answer(b"[2]")], 2)
    assert out == [{"n": 1}, [2]]
    assert connections == 1
    assert seen[0].startswith(b"GET /v1/x HTTP/1.1\r\nHost: airlock\r\n")


def test_a_chunked_answer_is_read_whole(sock: Path) -> None:
    body = b'{"long": "' + b"x" * 5000 + b'"}'
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:4000], body[4000:])
    )
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"
    out, _, _ = exchange(sock, [answer, json_answer(b"1")], 2)
    assert out == [{"long": "x" * 5000}, 1]


def test_connection_close_opens_a_new_connection_for_the_next_request(sock: Path) -> None:
    first = json_answer(b"1", "Connection: close")
    out, _, connections = exchange(sock, [first, json_answer(b"2")], 2)
    assert out == [1, 2]
    assert connections == 2


def test_a_get_on_a_kept_connection_the_daemon_closed_is_sent_again_once(sock: Path) -> None:
    out, seen, connections = exchange(sock, [json_answer(b"1"), None, json_answer(b"2")], 2)
    assert out == [1, 2]
    assert (len(seen), connections) == (3, 2)


def test_a_post_is_never_sent_twice(sock: Path) -> None:
    body = {"a": 1}
    out, seen, _ = exchange(sock, [json_answer(b"1"), None, json_answer(b"2")], 2, body=body)
    assert out[0] == 1
    assert isinstance(out[1], errors.DaemonUnreachable)
    assert len(seen) == 2


def test_a_daemon_closing_without_an_answer_is_unreachable(sock: Path) -> None:
    (out,), _, _ = exchange(sock, [None], 1)
    assert isinstance(out, errors.DaemonUnreachable)
    assert "closed the connection before answering" in str(out)


def test_an_answer_cut_short_is_unreachable_not_a_partial_body(sock: Path) -> None:
    cut = json_answer(b'{"n": 12345}')[:-4]
    out, _, _ = exchange(sock, [cut], 1)  # then the server closes
    assert isinstance(out[0], errors.DaemonUnreachable)
    assert "closed the connection before answering" in str(out[0])


def test_an_answer_that_is_not_http_is_refused(sock: Path) -> None:
    (out,), _, _ = exchange(sock, [b"SSH-2.0-OpenSSH\r\n\r\n"], 1)
    assert isinstance(out, errors.DaemonUnreachable)
    assert "not HTTP" in str(out)


def test_an_answer_larger_than_the_limit_is_refused(sock: Path) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {MAX_ANSWER + 1}\r\n\r\n".encode()
    (out,), _, _ = exchange(sock, [head], 1)
    assert isinstance(out, errors.AirlockError)
    assert "too large" in str(out)


def test_a_daemon_that_does_not_answer_times_out(sock: Path) -> None:
    async def main() -> errors.AirlockError:
        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # never answers

        server = await asyncio.start_unix_server(mute, path=str(sock))
        conn = DaemonConnection(sock, timeout=0.2)
        try:
            with pytest.raises(errors.DaemonUnreachable) as caught:
                await conn.request("GET", "/v1/x")
            return caught.value
        finally:
            await conn.aclose()
            server.close()

    assert "did not answer in time" in str(asyncio.run(main()))


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({"Authorization": "Bearer t\r\nX-Admin: 1"}, "/v1/x"),
        ({"X-Airlock-Claim": "c\nd"}, "/v1/x"),
        ({}, "/v1/x HTTP/1.1\r\nX: y"),
        ({}, "/v1/a b"),
    ],
)
def test_a_line_break_in_a_header_or_path_is_refused_before_sending(
    sock: Path, headers: dict[str, str], path: str
) -> None:
    async def main() -> None:
        conn = DaemonConnection(sock)
        with pytest.raises(errors.InvalidInput) as caught:
            await conn.request("GET", path, headers=headers)
        for value in headers.values():
            assert value not in str(caught.value)  # a token never lands in the message

    asyncio.run(main())  # no server at all: refused before connecting


def test_query_parameters_are_encoded(sock: Path) -> None:
    _, seen, _ = exchange(sock, [json_answer(b"1")], 1, params={"wait": 5, "q": "a b&c"})
    assert seen[0].startswith(b"GET /v1/x?wait=5&q=a+b%26c HTTP/1.1\r\n")


def test_concurrent_requests_each_get_their_own_connection_and_answer(sock: Path) -> None:
    """Twelve requests at once: each answer reaches its own caller; at most MAX_IDLE
    connections stay open afterwards and serve the next requests."""
    from airlock.clients._wire import MAX_IDLE

    async def main() -> tuple[list[object], int, int]:
        opened: list[int] = []

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            opened.append(1)
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    n = head.split(b" ", 2)[1].rsplit(b"/", 1)[1]
                    await asyncio.sleep(0.01)  # all twelve are in flight together
                    writer.write(json_answer(n))
                    await writer.drain()
            except asyncio.IncompleteReadError:
                writer.close()

        server = await asyncio.start_unix_server(echo, path=str(sock))
        conn = DaemonConnection(sock, timeout=5)
        try:
            out = await asyncio.gather(*(conn.request("GET", f"/v1/{i}") for i in range(12)))
            during = len(opened)
            out += [await conn.request("GET", f"/v1/{i}") for i in range(12, 12 + MAX_IDLE)]
            return out, during, len(opened)
        finally:
            await conn.aclose()
            server.close()

    out, during, after = asyncio.run(main())
    assert out == list(range(12 + MAX_IDLE))
    assert during == 12
    assert after == 12  # the kept connections served the sequential ones
