"""The connector's HTTP client against small servers on real sockets: an answer streams as
it arrives, the key never follows a redirect, certificates are checked, a proxy the
environment names is used, timeouts, compressed and oversized answers are handled."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from airlock.errors import ConnectorError, InvalidInput, ServiceAnswerLost, ServiceRefused
from airlock.testing import run
from airlock_openrouter import _api
from airlock_openrouter._api import OpenRouterApi
from tests.certificates import write_self_signed

KEY = "sk-or-v1-TRANSPORTCANARY" + "7" * 32
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(
    routes: dict[str, Handler], context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """An aiohttp app on a free local port; yields its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"{'https' if context else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def api_for(base: str, *, timeout: float = 10.0) -> OpenRouterApi:
    return OpenRouterApi(base, KEY, service="llm", timeout=timeout)


async def models_at(base: str) -> dict[str, Any]:
    """``GET models`` at *base* (the client closed after)."""
    api = api_for(base)
    try:
        return await api.get("models")
    finally:
        await api.aclose()


async def refusal(base: str) -> ConnectorError:
    """The error ``GET models`` at *base* ends with (the client closed after)."""
    api = api_for(base)
    try:
        with pytest.raises(ConnectorError) as raised:
            await api.get("models")
    finally:
        await api.aclose()
    return raised.value


def test_a_streamed_answer_reaches_the_connector_before_the_service_has_finished() -> None:
    go_on = asyncio.Event()

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\n')
        # The rest only once the client has seen the first event: a transport that
        # waited for more (or for the end) would never get it.
        await asyncio.wait_for(go_on.wait(), 10)
        await response.write(b'data: {"n": 2}\n\ndata: [DONE]\n\n')
        return response

    async def main() -> list[dict[str, Any]]:
        async with serving({"/chat": events}) as base:
            api = api_for(base)
            seen = []
            try:
                async for event in api.stream("chat", {}):
                    seen.append(event)
                    go_on.set()
            finally:
                await api.aclose()
            return seen

    assert run(main()) == [{"n": 1}, {"n": 2}]


def test_a_redirect_is_not_followed_and_the_key_goes_nowhere_else() -> None:
    elsewhere: list[str | None] = []

    async def other(request: web.Request) -> web.Response:
        elsewhere.append(request.headers.get("Authorization"))
        return web.json_response({"data": []})

    async def main() -> ConnectorError:
        async with serving({"/models": other}) as other_base:

            async def moved(request: web.Request) -> web.Response:
                raise web.HTTPTemporaryRedirect(f"{other_base}/models")

            async with serving({"/models": moved}) as base:
                return await refusal(base)

    error = run(main())
    assert elsewhere == []
    assert KEY not in json.dumps(error.to_dict())


def test_a_certificate_the_machine_does_not_trust_is_refused(tmp_path: Path) -> None:
    served: list[str] = []

    async def models(request: web.Request) -> web.Response:
        served.append(request.path)
        return web.json_response({"data": []})

    async def main() -> ConnectorError:
        async with serving({"/models": models}, self_signed(tmp_path)) as base:
            return await refusal(base)

    error = run(main())
    assert "unreachable" in error.message
    assert isinstance(error, ServiceRefused)  # a spend call this ends costs nothing
    assert served == []  # the request, and the key in it, never left the TLS handshake


def test_a_certificate_authority_named_by_ssl_cert_file_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "a/b"}]})

    context = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))

    async def main() -> dict[str, Any]:
        async with serving({"/models": models}, context) as base:
            return await models_at(base)

    assert run(main()) == {"data": [{"id": "a/b"}]}


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY"])
def test_a_proxy_the_environment_names_carries_the_request(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    seen: list[tuple[str, str | None]] = []

    async def proxy(request: web.Request) -> web.Response:
        # A forward proxy gets the whole URL in the request line.
        seen.append((str(request.url), request.headers.get("Authorization")))
        return web.json_response({"data": []})

    async def main() -> dict[str, Any]:
        async with serving({"/{tail:.*}": proxy}) as proxy_base:
            only_proxy(monkeypatch, variable, proxy_base)
            return await models_at("http://openrouter.invalid/api/v1")

    assert run(main()) == {"data": []}
    assert seen == [("http://openrouter.invalid/api/v1/models", f"Bearer {KEY}")]


@pytest.mark.parametrize(
    "no_proxy",
    [
        lambda base: "127.0.0.1",  # the host
        lambda base: base.removeprefix("http://"),  # the host with its port
    ],
    ids=["host", "host:port"],
)
def test_a_host_no_proxy_names_is_reached_directly(
    monkeypatch: pytest.MonkeyPatch, no_proxy: Callable[[str], str]
) -> None:
    through_proxy: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        through_proxy.append(str(request.url))
        return web.json_response({"data": []})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "a/b"}]})

    async def main() -> dict[str, Any]:
        async with (
            serving({"/{tail:.*}": proxy}) as proxy_base,
            serving({"/models": models}) as base,
        ):
            only_proxy(monkeypatch, "HTTP_PROXY", proxy_base)
            monkeypatch.setenv("NO_PROXY", no_proxy(base))
            return await models_at(base)

    assert run(main()) == {"data": [{"id": "a/b"}]}
    assert through_proxy == []


def test_a_proxy_that_is_not_http_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only_proxy(monkeypatch, "ALL_PROXY", "socks5://127.0.0.1:9")
    error = run(refusal("http://openrouter.invalid/api/v1"))
    assert "HTTP proxies only" in error.message
    assert KEY not in json.dumps(error.to_dict())


def only_proxy(monkeypatch: pytest.MonkeyPatch, variable: str, url: str) -> None:
    """The environment names *url* as its proxy in *variable*, and no other proxy."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv(variable, url)


def test_a_service_that_stops_answering_is_a_timeout() -> None:
    released = asyncio.Event()

    async def stalls(request: web.Request) -> web.Response:
        await asyncio.wait_for(released.wait(), 10)
        return web.json_response({})

    async def main() -> ConnectorError:
        async with serving({"/models": stalls}) as base:
            api = api_for(base, timeout=0.3)
            try:
                with pytest.raises(ConnectorError) as raised:
                    await api.get("models")
            finally:
                released.set()
                await api.aclose()
            return raised.value

    error = run(main())
    assert "did not answer in time" in error.message
    assert isinstance(error, ServiceAnswerLost)  # the service has the request: it may bill it


def test_a_compressed_answer_is_decoded_once() -> None:
    async def models(request: web.Request) -> web.Response:
        assert "gzip" in request.headers.get("Accept-Encoding", "")
        body = gzip.compress(json.dumps({"data": [{"id": "a/b"}]}).encode())
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async def main() -> dict[str, Any]:
        async with serving({"/models": models}) as base:
            return await models_at(base)

    assert run(main()) == {"data": [{"id": "a/b"}]}


def test_a_stream_left_half_read_does_not_spoil_the_next_call() -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for n in range(50):
            await response.write(f'data: {{"n": {n}}}\n\n'.encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [], "auth": request.headers["Authorization"] != ""})

    async def main() -> dict[str, Any]:
        async with serving({"/chat": events, "/models": models}) as base:
            api = api_for(base)
            try:
                async for event in api.stream("chat", {}):
                    if event["n"] == 2:
                        break  # a budget cut: the rest of the answer is never read
                return await api.get("models")
            finally:
                await api.aclose()

    assert run(main()) == {"data": [], "auth": True}


def self_signed(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(write_self_signed(directory), directory / "key.pem")
    return context


def test_an_answer_over_16_mib_is_refused_even_when_it_comes_compressed() -> None:
    bomb = gzip.compress(b'{"data": "' + b"0" * (24 << 20) + b'"}', compresslevel=9)

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    async def main() -> ConnectorError:
        async with serving({"/models": models}) as base:
            return await refusal(base)

    assert len(bomb) < 100_000
    error = run(main())
    assert "over 16 MiB" in error.message
    assert isinstance(error, ServiceAnswerLost)


def test_an_error_answer_is_read_only_as_far_as_its_message_needs() -> None:
    async def failing(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while True:  # an explanation that never ends
                await response.write(b"x" * (1 << 20))
        return response

    async def main() -> ConnectorError:
        async with serving({"/models": failing}) as base:
            api = api_for(base)
            try:
                with pytest.raises(ConnectorError) as raised:
                    await asyncio.wait_for(api.get("models"), 10)
            finally:
                await api.aclose()
            return raised.value

    error = run(main())
    assert error.message == "OpenRouter failed: HTTP 500"
    assert isinstance(error, ServiceRefused)  # the service answered: refused, not billed


async def stream_until_error(
    events: Callable[[web.Request], Awaitable[web.StreamResponse]],
    finally_: Callable[[], None] = lambda: None,
) -> tuple[list[dict[str, Any]], ConnectorError]:
    """What a stream served by *events* yielded before it failed, and its error
    (*finally_* runs before the client closes, to let a held-back server go)."""
    async with serving({"/chat": events}) as base:
        api = api_for(base)
        seen: list[dict[str, Any]] = []

        async def read_all() -> None:
            async for item in api.stream("chat", {}):
                seen.append(item)

        try:
            with pytest.raises(ConnectorError) as raised:
                await read_all()
        finally:
            finally_()
            await api.aclose()
        return seen, raised.value


@pytest.mark.parametrize("event", [b"data: " + b"a" * (2 << 20), b"data: a\n" * (300 << 10)])
def test_an_event_over_1_mib_ends_the_stream(event: bytes) -> None:
    released = asyncio.Event()

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\n')
        await response.write(event)  # never ended by a blank line
        await asyncio.wait_for(released.wait(), 10)
        return response

    seen, error = run(stream_until_error(events, released.set))
    assert seen == [{"n": 1}]
    assert "over 1 MiB" in error.message
    assert isinstance(error, ServiceAnswerLost)


@pytest.mark.parametrize("tail", [b"", b'data: {"n": 2', b"data: [DONE]"])
def test_a_stream_that_ends_before_done_is_an_answer_cut_short(tail: bytes) -> None:
    """A service (or something on the way) that closes the stream early: the agent gets
    an error, not an answer it would take for whole."""

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\n' + tail)
        await response.write_eof()
        return response

    seen, error = run(stream_until_error(events))
    assert seen == [{"n": 1}]
    assert isinstance(error, ServiceAnswerLost)
    assert "ended before [DONE]" in error.message


def test_a_service_dripping_bytes_after_done_does_not_hold_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_api, "TAIL_SECONDS", 0.2)
    released = asyncio.Event()

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\ndata: [DONE]\n\n')
        while not released.is_set():  # a byte now and then, forever
            await response.write(b":\n")
            await asyncio.sleep(0.02)
        return response

    async def main() -> list[dict[str, Any]]:
        async with serving({"/chat": events}) as base:
            api = api_for(base)
            try:
                return [item async for item in api.stream("chat", {})]
            finally:
                released.set()
                await api.aclose()

    assert run(asyncio.wait_for(main(), 10)) == [{"n": 1}]


async def _connect_seen_by_proxy(proxy_value: str) -> tuple[bytes, ConnectorError]:
    """What an HTTP proxy named by ``HTTPS_PROXY`` receives for a call to an https
    ``api_base``: the CONNECT request, which travels outside TLS (answered 403); and the
    call's error."""
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    os.environ["HTTPS_PROXY"] = proxy_value.format(port=port)
    try:
        with pytest.raises(ConnectorError) as raised:
            await models_at("https://openrouter.invalid/api/v1")
    finally:
        server.close()
    assert seen, "the proxy was not used"
    return seen[0], raised.value


def test_the_key_never_goes_to_a_proxy_in_the_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    only_proxy(monkeypatch, "HTTPS_PROXY", "")
    connect, error = run(_connect_seen_by_proxy("http://127.0.0.1:{port}"))
    assert connect.startswith(b"CONNECT openrouter.invalid:443")
    assert KEY.encode() not in connect
    assert b"Authorization" not in connect
    assert isinstance(error, ServiceRefused)  # refused by the proxy: nothing sent


def test_a_proxy_named_without_a_scheme_is_an_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    only_proxy(monkeypatch, "HTTPS_PROXY", "")
    connect, _ = run(_connect_seen_by_proxy("127.0.0.1:{port}"))
    assert connect.startswith(b"CONNECT openrouter.invalid:443")


def test_a_refused_proxy_is_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    only_proxy(monkeypatch, "ALL_PROXY", "socks5://alice:s3cret@127.0.0.1:9")
    error = run(refusal("http://openrouter.invalid/api/v1"))
    assert "HTTP proxies only" in error.message
    assert "alice" not in error.message
    assert "s3cret" not in error.message


async def one_event(request: web.Request, event: str) -> web.StreamResponse:
    """A stream of one server-sent event, then ``[DONE]``."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(f"data: {event}\n\ndata: [DONE]\n\n".encode())
    return response


def what_the_agent_sees(refuses: Handler, answers: Handler, streams: Handler) -> list[str]:
    """As JSON: the error a refusal ends with, an answer, and a stream's events."""

    async def main() -> list[str]:
        routes = {"/refuses": refuses, "/answers": answers, "/streams": streams}
        async with serving(routes) as base:
            api = api_for(base)
            try:
                with pytest.raises(InvalidInput) as raised:
                    await api.post("refuses", {})
                answer = await api.post("answers", {})
                events = [event async for event in api.stream("streams", {})]
            finally:
                await api.aclose()
            return [json.dumps(raised.value.to_dict()), json.dumps(answer), json.dumps(events)]

    return run(main())


def test_a_service_echoing_the_key_does_not_pass_it_on() -> None:
    """An error explanation, an answer or a streamed event that quotes the request's
    ``Authorization`` header (a broken proxy, a provider's debug message) reaches the
    agent without the key."""

    def echo(request: web.Request) -> str:
        return f"got header {request.headers['Authorization']}"

    async def refuses(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": echo(request)}}, status=400)

    async def answers(request: web.Request) -> web.Response:
        return web.json_response({"choices": [{"message": {"content": echo(request)}}]})

    async def streams(request: web.Request) -> web.StreamResponse:
        event = json.dumps({"choices": [{"delta": {"content": echo(request)}}]})
        return await one_event(request, event)

    seen = what_the_agent_sees(refuses, answers, streams)
    assert all("got header Bearer " in text for text in seen)
    assert not [text for text in seen if KEY in text]


def post_refused(
    routes: dict[str, Handler], path: str, kind: type[ConnectorError]
) -> ConnectorError:
    """The error of *kind* a ``POST`` of *path* at a server of *routes* ends with."""

    async def main() -> ConnectorError:
        async with serving(routes) as base:
            api = api_for(base)
            try:
                with pytest.raises(kind) as raised:
                    await api.post(path, {})
            finally:
                await api.aclose()
            return raised.value

    return run(main())


def _escaped(text: str, which: Callable[[int, str], bool], *, upper: bool = False) -> str:
    """*text* as a JSON string's inside, the characters *which* picks spelled ``\\uxxxx``
    (``\\uXXXX`` if *upper*)."""
    spelling = "\\u{:04X}" if upper else "\\u{:04x}"
    return "".join(spelling.format(ord(c)) if which(i, c) else c for i, c in enumerate(text))


SPELLINGS = {
    "every character escaped": _escaped(KEY, lambda i, c: True),
    "its first character escaped": _escaped(KEY, lambda i, c: i == 0),
    "upper-case hex, one in three": _escaped(KEY, lambda i, c: i % 3 == 0, upper=True),
}


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=list(SPELLINGS))
def test_a_key_echoed_in_json_escapes_is_withheld_too(spelling: str) -> None:
    """JSON may spell any character as an escape (PHP's encoder escapes every ``/``, Go's
    ``<``, ``>`` and ``&``): the key read out of such an echo is withheld as the raw one
    is, from an error's message, an answer's strings and member names, and an event."""

    def echo(request: web.Request) -> str:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        return f"got header Bearer {spelling}"

    def answer(body: str, status: int = 200) -> web.Response:
        return web.Response(body=body.encode(), status=status, content_type="application/json")

    async def refuses(request: web.Request) -> web.Response:
        return answer(f'{{"error": {{"message": "{echo(request)}"}}}}', status=400)

    async def answers(request: web.Request) -> web.Response:
        content = echo(request)
        return answer(f'{{"choices": [{{"message": {{"content": "{content}"}}}}], "{content}": 1}}')

    async def streams(request: web.Request) -> web.StreamResponse:
        event = f'{{"choices": [{{"delta": {{"content": "{echo(request)}"}}}}]}}'
        return await one_event(request, event)

    seen = what_the_agent_sees(refuses, answers, streams)
    # The key, or its run after an escaped first letter, withheld (one letter may show).
    assert all("got header Bearer " in text and "[key withheld]" in text for text in seen)
    assert not [text for text in seen if "TRANSPORTCANARY" in text]


def test_a_key_at_the_cut_of_an_error_message_shows_no_part_of_it() -> None:
    """The message is cut short after the key is withheld, not before: a cut through an
    escaped key would have left its first characters."""
    cut = _api.ERROR_TEXT_LIMIT
    spelled = _escaped(KEY, lambda i, c: True)

    async def refuses(request: web.Request) -> web.Response:
        body = f'{{"error": {{"message": "{"x" * (cut - 12)} {spelled}"}}}}'
        return web.Response(body=body.encode(), status=400, content_type="application/json")

    message = post_refused({"/refuses": refuses}, "refuses", InvalidInput).message
    assert "x" * (cut - 12) + " [key with" in message
    assert KEY[:6] not in message


@pytest.mark.parametrize(
    "body",
    [
        '{"error": "Bearer ESCAPED"}',  # an error as a plain string
        '{"detail": {"header": "Bearer ESCAPED"}}',  # another shape altogether
    ],
)
def test_an_error_of_another_shape_shows_its_json_with_the_key_withheld(body: str) -> None:
    """Not ``{"error": {"message"}}``: the JSON as read is shown, the key withheld from it
    (the bytes as sent would show its escapes, which spell the key)."""
    spelled = _escaped(KEY, lambda i, c: True)

    async def refuses(request: web.Request) -> web.Response:
        content = body.replace("ESCAPED", spelled).encode()
        return web.Response(body=content, status=400, content_type="application/json")

    message = post_refused({"/refuses": refuses}, "refuses", InvalidInput).message
    assert "Bearer [key withheld]" in message
    assert "TRANSPORTCANARY" not in message
    assert "\\u" not in message


def test_an_error_cut_short_through_the_key_shows_no_start_of_it() -> None:
    """An error body is read to 64 KiB: one cut there through an echoed key, its white
    space (which the agent's own input can pad) collapsed to bring the cut into the first
    300 characters, shows none of the key."""
    limit = _api.MAX_ERROR_BYTES
    head = '{"error": {"message": "echo:'
    tail = f" Bearer {KEY}"
    padding = " " * (limit - len(head) - len(tail) + 5)  # the cut falls 5 short of the end

    async def refuses(request: web.Request) -> web.Response:
        content = f'{head}{padding}{tail}"}}}}'.encode()
        return web.Response(body=content, status=400, content_type="application/json")

    message = post_refused({"/refuses": refuses}, "refuses", InvalidInput).message
    assert message.endswith(("echo: Bearer", "echo: Bearer [key withheld]"))
    assert KEY[:8] not in message


def test_an_answer_in_utf_16_is_an_answer_lost() -> None:
    """``json.loads`` would read it, and a search for the key's UTF-8 bytes would not find
    the key in it."""

    async def answers(request: web.Request) -> web.Response:
        content = json.dumps({"choices": [{"message": {"content": f"Bearer {KEY}"}}]})
        return web.Response(body=content.encode("utf-16"), content_type="application/json")

    lost = post_refused({"/answers": answers}, "answers", ServiceAnswerLost)
    assert "not JSON" in lost.message


def test_an_answer_nested_deeper_than_json_reads_is_an_answer_lost() -> None:
    """A service's answer a hundred thousand arrays deep is unreadable JSON, said so,
    not an unexpected failure of the connector."""

    async def answers(request: web.Request) -> web.Response:
        body = "[" * 100_000 + "]" * 100_000
        return web.Response(body=body.encode(), content_type="application/json")

    lost = post_refused({"/answers": answers}, "answers", ServiceAnswerLost)
    assert "not JSON" in lost.message


def test_closing_the_client_ends_the_calls_it_is_reading_at_once() -> None:
    """The connector is closed under running calls (the vault locked, no session covering
    the service any more): each ends at once as an answer lost, not waiting on a
    connection that is gone (aiohttp's close leaves its readers waiting, timeout dropped)."""
    released, arrived = asyncio.Event(), asyncio.Event()

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\n')
        await asyncio.wait_for(released.wait(), 10)
        return response

    async def thinking(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.wait_for(released.wait(), 10)
        return web.json_response({})

    async def main() -> list[object]:
        async with serving({"/chat": events, "/slow": thinking}) as base:
            api = api_for(base, timeout=60)
            first = asyncio.Event()

            async def read_stream() -> None:
                async for _ in api.stream("chat", {}):
                    first.set()

            async def close_under_them() -> None:
                await first.wait()
                await arrived.wait()
                await api.aclose()

            calls = asyncio.gather(
                read_stream(), api.post("slow", {}), close_under_them(), return_exceptions=True
            )
            try:
                # A bound for the test only: before, both calls waited for the service.
                return await asyncio.wait_for(calls, 5)
            finally:
                released.set()

    stream, answer, _ = run(main())
    assert isinstance(stream, ServiceAnswerLost), stream
    assert isinstance(answer, ServiceAnswerLost), answer
