"""What a hostile agent sends the daemon's socket: odd framing, huge or deeply nested bodies,
extreme dates, floods of connections. Each case runs against a real daemon process."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
from daemon_harness import Airlock

REQUEST_HEAD = b'{"services": ["mail"], '
REQUEST_TAIL = b'"reason": "summarise my inbox"}'


def error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body: dict[str, str] = response.json()["error"]
    assert body["code"]
    assert body["message"]
    return body


def slowly(*parts: bytes) -> Iterator[bytes]:
    """A chunked body whose later chunks arrive after the daemon has read the first."""
    for index, part in enumerate(parts):
        if index:
            time.sleep(0.2)
        yield part


# -- bodies are read whole, whatever the framing ------------------------------------------


def test_a_300_kb_body_is_read_whole(airlock: Airlock) -> None:
    # Valid JSON (whitespace between tokens), more than a socket buffer's worth, sent
    # with a Content-Length and arriving in two parts as a busy sender's would.
    padding = b" " * 300_000
    length = str(len(REQUEST_HEAD) + len(padding) + len(REQUEST_TAIL))
    with airlock.client() as agent:
        response = agent.post(
            "/v1/requests",
            content=slowly(REQUEST_HEAD + padding, REQUEST_TAIL),
            headers={"Content-Length": length},
        )
    assert response.status_code == 202, response.text
    assert response.json()["code"]


def test_a_chunked_body_is_read_across_its_chunks(airlock: Airlock) -> None:
    with airlock.client() as agent:
        response = agent.post("/v1/requests", content=slowly(REQUEST_HEAD, REQUEST_TAIL))
    assert response.status_code == 202, response.text


def test_bytes_after_the_json_in_a_later_chunk_are_a_400(airlock: Airlock) -> None:
    with airlock.client() as agent:
        response = agent.post(
            "/v1/requests", content=slowly(REQUEST_HEAD + REQUEST_TAIL, b' {"x": 1}')
        )
        assert error(response, 400)["field"] == "body"
        assert agent.get("/v1/requests").json()["requests"] == []


def test_a_chunked_body_over_1_mib_is_a_413(airlock: Airlock) -> None:
    padding = [b" " * 65536] * 17  # 1.06 MiB
    with airlock.client() as agent:
        response = agent.post("/v1/requests", content=slowly(REQUEST_HEAD, *padding, REQUEST_TAIL))
        assert error(response, 413)["code"] == "payload_too_large"
        assert agent.get("/v1/requests").json()["requests"] == []


# -- nesting and dates that crash parsers -------------------------------------------------


def test_deeply_nested_json_is_a_400_naming_where(airlock: Airlock) -> None:
    with airlock.client() as agent:
        huge = b'{"services": ["mail"], "reason": "x", "agent": ' + b"[" * 100_000
        huge += b"]" * 100_000 + b"}"
        assert error(agent.post("/v1/requests", content=huge), 400)["field"] == "body"
        token = airlock.session(agent)["token"]
        deep = b'{"params": {"query": ' + b"[" * 500 + b"]" * 500 + b"}}"
        response = agent.post(
            "/v1/ops/mail/search", content=deep, headers={"Authorization": f"Bearer {token}"}
        )
        assert error(response, 400)["field"] == "params"
        assert agent.get("/v1/status").status_code == 200


def test_an_audit_since_outside_the_calendar_is_a_400_naming_since(airlock: Airlock) -> None:
    with airlock.client() as owner:
        for since in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999999d"):
            response = owner.get("/v1/audit", params={"since": since})
            assert error(response, 400)["field"] == "since", since
        assert owner.get("/v1/audit", params={"since": "7d"}).status_code == 200
