"""A server that quotes the refused LOGIN line back (some do) does not hand the password
to the agent: the refusal's text reaches it with the password withheld, as sent, as an
IMAP quoted string, and as imaplib words a BAD or BYE answer (the ``repr`` of its bytes,
or them read as ASCII); a quote cut short is not shown at all."""

from __future__ import annotations

import re
import socket
import threading

import pytest

from airlock_mail._imap_client import GuardedClient, login
from airlock_mail._imap_endpoint import Endpoint, LoginRefused
from airlock_mail._imap_guard import READ_ONLY

_LITERAL = re.compile(rb"\{(\d+)\}$")


def _quoting_server(listener: socket.socket, answer: bytes) -> None:
    """Greets, says what it can, and answers LOGIN with *answer* (NO or BAD) and the
    command it got, a literal's bytes included, quoted back whole."""
    conn, _ = listener.accept()
    with conn, conn.makefile("rb") as lines:
        conn.sendall(b"* OK ready\r\n")
        while line := lines.readline().rstrip(b"\r\n"):
            while literal := _LITERAL.search(line):  # quoted in place of its {n}
                conn.sendall(b"+ go on\r\n")
                line = line[: literal.start()] + lines.read(int(literal.group(1)))
                line += lines.readline().rstrip(b"\r\n")
            tag, _, command = line.partition(b" ")
            verb = command.split(b" ", 1)[0].upper()
            if verb == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
            elif verb == b"LOGIN" and answer == b"BYE":  # imaplib reads a BYE as ASCII
                conn.sendall(b"* BYE refused: " + line + b"\r\n" + tag + b" NO bye\r\n")
                return
            elif verb == b"LOGIN" and answer == b"cut":  # the quote cut short
                conn.sendall(tag + b" NO [ALERT] refused: " + line[:-4] + b"\r\n")
            elif verb == b"LOGIN":
                conn.sendall(tag + b" " + answer + b" refused: " + line + b"\r\n")
            else:
                conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return


@pytest.mark.parametrize("answer", [b"NO [AUTHENTICATIONFAILED]", b"BAD", b"BYE", b"cut"])
@pytest.mark.parametrize(
    "password",
    ['ECHO"CANARY\\pw', "ECHO'CANARY\\pw", "ECHOCANARY-päss"],
    ids=["double quote and backslash", "single quote", "not ASCII (a literal)"],
)
def test_a_server_quoting_the_login_back_does_not_show_the_password(
    answer: bytes, password: str
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=_quoting_server, args=(listener, answer), daemon=True)
    thread.start()
    endpoint = Endpoint("127.0.0.1", listener.getsockname()[1], "none", timeout=10)
    client = GuardedClient(endpoint, READ_ONLY)
    try:
        with pytest.raises(LoginRefused) as refused:
            login(client, "someone@example.test", password)
    finally:
        client.shutdown()
        listener.close()
    text = str(refused.value)
    if answer == b"cut":  # no form to withhold: the text is not shown, its code is
        assert text == "[ALERT] (the server's text quoted the password)"
    else:
        assert "refused: " in text
        assert "[password withheld]" in text
    assert "CANARY" not in text
