"""The fast path's wire format: calls read from a connection's bytes
(``daemon.call_wire.CallReader``) and answers as bytes (``encode_response``)."""

from __future__ import annotations

import pytest
from aiohttp import web

from airlock.daemon.call_wire import CallReader, encode_json, encode_response


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


def _call(path: str, token: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: a", f"Authorization: Bearer {token}", *extra]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_each_call_on_a_connection_is_read_from_its_own_head() -> None:
    """A connection's last head is remembered; a head that differs in anything (the
    token, the path, the body's length, a header) is read anew, and one that is not in
    the strict form is still refused after a good one."""
    reader = CallReader()
    first = reader.read(_call("/v1/ops/mail/count_unread", "alk_one", b"{}"))
    assert first is not None
    assert (first.service, first.operation, first.authorization, first.body) == (
        "mail",
        "count_unread",
        "Bearer alk_one",
        b"{}",
    )
    again = reader.read(_call("/v1/ops/mail/count_unread", "alk_one", b"[]"))
    assert again is not None
    assert again.body == b"[]"
    other = reader.read(_call("/v1/ops/mail/count_unread", "alk_two", b"{}"))
    assert other is not None
    assert other.authorization == "Bearer alk_two"
    longer = b'{"params":{"folder":"Archive"}}'
    moved = reader.read(_call("/v1/ops/cal/list_events", "alk_two", longer))
    assert moved is not None
    assert (moved.service, moved.operation, moved.body) == ("cal", "list_events", longer)
    closing = reader.read(_call("/v1/ops/cal/list_events", "alk_two", longer, "Connection: close"))
    assert closing is not None
    assert closing.close
    assert reader.read(_call("/v1/ops/cal/list_events", "alk_two", longer, "Expect: x")) is None


def test_a_remembered_head_still_waits_for_its_whole_body() -> None:
    reader = CallReader()
    whole = _call("/v1/ops/mail/count_unread", "alk_one", b'{"params":{}}')
    assert reader.read(whole) is not None
    assert reader.read(whole[:-1]) is None  # the same head, a byte of its body missing
    found = reader.read(whole)
    assert found is not None
    assert found.size == len(whole)
