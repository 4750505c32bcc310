"""airlock.clients._plain: the CLI's one blocking GET reads the wire as the client does."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock import errors
from airlock.clients._plain import get_json


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[Path, list[bytes], list[bytes]]]:
    """A Unix socket that answers each connection with the next canned answer and keeps
    what it was sent."""
    path = tmp_path / "airlock.sock"
    answers: list[bytes] = []
    received: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def loop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                received.append(conn.recv(65536))
                conn.sendall(answers.pop(0))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield path, answers, received
    server.shutdown(socket.SHUT_RDWR)  # wakes the accept
    server.close()
    thread.join(5)


def test_a_json_answer_with_a_content_length(serve: tuple[Path, list[bytes], list[bytes]]) -> None:
    path, answers, received = serve
    answers.append(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"a": 1}'
    )
    assert get_json(path, "/v1/status") == {"a": 1}
    assert received[0].startswith(b"GET /v1/status HTTP/1.1\r\nHost: airlock\r\n")


def test_a_chunked_answer(serve: tuple[Path, list[bytes], list[bytes]]) -> None:
    path, answers, _ = serve
    answers.append(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[1, \r\n2\r\n2]\r\n0\r\n\r\n"
    )
    assert get_json(path, "/v1/status") == [1, 2]


def test_an_error_answer_is_the_error_its_body_names(
    serve: tuple[Path, list[bytes], list[bytes]],
) -> None:
    path, answers, _ = serve
    body = b'{"error": {"code": "forbidden", "message": "not yours", "hint": "ask"}}'
    answers.append(b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    with pytest.raises(errors.Forbidden) as info:
        get_json(path, "/v1/status")
    assert (info.value.message, info.value.hint) == ("not yours", "ask")


def test_an_answer_that_is_not_http_is_unreachable(
    serve: tuple[Path, list[bytes], list[bytes]],
) -> None:
    path, answers, _ = serve
    answers.append(b"SSH-2.0-OpenSSH\r\n")
    with pytest.raises(errors.DaemonUnreachable, match="not HTTP"):
        get_json(path, "/v1/status")


def test_no_socket_and_a_dead_socket_are_unreachable_as_the_client_says(tmp_path: Path) -> None:
    with pytest.raises(errors.DaemonUnreachable) as missing:
        get_json(tmp_path / "none.sock", "/v1/status")
    assert missing.value.message == (
        f"no Airlock daemon answers at {tmp_path / 'none.sock'} (no such file or directory)"
    )
    dead = tmp_path / "dead.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(dead))
    listener.close()  # the file stays; nobody listens
    with pytest.raises(errors.DaemonUnreachable, match="connection refused"):
        get_json(dead, "/v1/status")
