"""A server that quotes the refused LOGIN line back (some do) does not hand the password
to the agent: the refusal's text reaches it with the password withheld, as sent and as
quoted."""

from __future__ import annotations

import socket
import threading

import pytest

from airlock_mail._imap_client import GuardedClient, login
from airlock_mail._imap_endpoint import Endpoint, LoginRefused
from airlock_mail._imap_guard import READ_ONLY

PASSWORD = 'ECHO"CANARY\\pw'


def _quoting_server(listener: socket.socket) -> None:
    """Greets, says what it can, and answers LOGIN with NO and the line it got, quoted
    back whole."""
    conn, _ = listener.accept()
    with conn, conn.makefile("rb") as lines:
        conn.sendall(b"* OK ready\r\n")
        while line := lines.readline().rstrip(b"\r\n"):
            tag, _, command = line.partition(b" ")
            verb = command.split(b" ", 1)[0].upper()
            if verb == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
            elif verb == b"LOGIN":
                conn.sendall(tag + b" NO [AUTHENTICATIONFAILED] refused: " + line + b"\r\n")
            else:
                conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return


def test_a_server_quoting_the_login_line_back_does_not_show_the_password() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=_quoting_server, args=(listener,), daemon=True)
    thread.start()
    endpoint = Endpoint("127.0.0.1", listener.getsockname()[1], "none", timeout=10)
    client = GuardedClient(endpoint, READ_ONLY)
    try:
        with pytest.raises(LoginRefused) as refused:
            login(client, "someone@example.test", PASSWORD)
    finally:
        client.shutdown()
        listener.close()
    text = str(refused.value)
    assert "refused: " in text
    assert "LOGIN" in text
    assert "[password withheld]" in text
    assert "CANARY" not in text
