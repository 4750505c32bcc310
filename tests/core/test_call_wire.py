"""The fast path's answers as bytes (``daemon.call_wire.encode_response``)."""

from __future__ import annotations

import pytest
from aiohttp import web

from airlock.daemon.call_wire import encode_json, encode_response


def test_an_answer_is_http_1_1_with_its_length_and_date() -> None:
    response = web.Response(body=b'{"ok":true}', status=200, content_type="application/json")
    head, _, body = encode_response(response, close=True).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Content-Length: 11" in lines
    assert b"Connection: close" in lines
    assert any(line.startswith(b"Date: ") for line in lines)
    assert body == b'{"ok":true}'


@pytest.mark.parametrize("bad", ["x\r\nSet-Cookie: a=b", "x\nLocation: /", "x\rEvil: 1"])
def test_a_header_value_with_a_line_break_never_reaches_the_wire(bad: str) -> None:
    """No value an agent sends reaches a header today; should one ever, it must not split
    the answer (aiohttp refuses the same when it writes): a 500 instead."""
    response = web.Response(body=b"{}", content_type="application/json")
    response.headers["Retry-After"] = bad
    answer = encode_response(response, close=False)
    assert answer.startswith(b"HTTP/1.1 500 ")
    for injected in (b"Set-Cookie", b"Location", b"Evil"):
        assert injected not in answer


@pytest.mark.parametrize("close", [False, True])
@pytest.mark.parametrize("body", [b"{}", b'{"result":{"unread":3},"untrusted":true}', b"x" * 70000])
def test_a_json_answer_is_the_bytes_of_the_response_it_stands_for(body: bytes, close: bool) -> None:
    response = web.Response(body=body, content_type="application/json")
    assert encode_json(body, close=close) == encode_response(response, close=close)
