"""The wire guard and the search translation on their own (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.errors import InvalidInput
from airlock_mail._imap_guard import READ_ONLY, READ_WRITE, GuardViolation, WireGuard
from airlock_mail._imap_ids import parse_id
from airlock_mail._imap_search import imap_string, query_criteria
from airlock_mail.query import parse_query

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


def guard(policy: object = READ_ONLY) -> tuple[WireGuard, list[bytes]]:
    sent: list[bytes] = []
    return WireGuard(policy, sent.append), sent  # type: ignore[arg-type]


def test_read_commands_pass_and_are_counted() -> None:
    wire, sent = guard()
    for line in [
        b"A1 CAPABILITY\r\n",
        b'A2 LOGIN "me" "pw {5}"\r\n',
        b'A3 EXAMINE "INBOX"\r\n',
        b'A4 LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))\r\n',
        b'A5 STATUS "INBOX" (UNSEEN)\r\n',
        b"A6 UID SEARCH CHARSET UTF-8 SUBJECT",
        b" {6}\r\n",
        b"M\xc3\xbcnch",
        b' FROM "x"\r\n',
        b"A7 UID FETCH 1:5,9 (FLAGS BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (FROM TO)] "
        b"BODY.PEEK[TEXT]<0.8192> RFC822.SIZE X-GM-LABELS)\r\n",
        b"A8 UID FETCH 7 (FLAGS RFC822.SIZE BODY.PEEK[]<0.67108864>)\r\n",
        b"A9 NOOP\r\n",
        b"A10 LOGOUT\r\n",
    ]:
        wire.send(line)
    assert wire.commands_sent == 10
    assert wire.counts["UID FETCH"] == 2
    assert b"".join(sent).count(b"\r\n") == 11  # and one ends the literal's line


@pytest.mark.parametrize(
    "line",
    [
        b"A1 SELECT INBOX\r\n",
        b"A1 UID STORE 1 +FLAGS (\\Seen)\r\n",
        b"A1 STORE 1 +FLAGS (\\Seen)\r\n",
        b"A1 UID FETCH 1 (BODY[])\r\n",
        b"A1 UID FETCH 1 (FLAGS BODY[TEXT])\r\n",
        b"A1 UID FETCH 1 RFC822\r\n",
        b"A1 UID FETCH 1 RFC822.TEXT\r\n",
        b"A1 UID FETCH 1 (BINARY[1])\r\n",
        b"A1 UID FETCH 1 (FLAGS) (CHANGEDSINCE 1)\r\n",
        b"A1 FETCH 1 (FLAGS)\r\n",
        b"A1 UID MOVE 1 Trash\r\n",
        b"A1 UID EXPUNGE 1\r\n",
        b"A1 EXPUNGE\r\n",
        b"A1 CLOSE\r\n",
        b"A1 APPEND INBOX {5}\r\n",
        b"A1 DELETE Archive\r\n",
        b"A1 AUTHENTICATE PLAIN\r\n",
        b"DONE\r\n",
        b"\r\n",
    ],
)
def test_the_read_only_guard_sends_nothing_of_anything_else(line: bytes) -> None:
    wire, sent = guard()
    with pytest.raises(GuardViolation):
        wire.send(line)
    assert sent == []
    wire.send(b"A2 NOOP\r\n")  # and the next command is judged on its own
    assert sent == [b"A2 NOOP\r\n"]


def test_a_literal_cannot_hide_a_command() -> None:
    wire, sent = guard()
    wire.send(b"A1 UID SEARCH TEXT {20}\r\n")
    assert sent == [b"A1 UID SEARCH TEXT {20}\r\n"]
    wire.send(b"\r\nA2 UID STORE 1 +F")  # literal bytes: data, not a command
    wire.send(b"\r\n")
    with pytest.raises(GuardViolation):
        wire.send(b"A3 UID STORE 1 +FLAGS (\\Seen)\r\n")
    assert wire.commands_sent == 1


def test_the_write_guard_allows_one_approved_write_but_never_expunge_all() -> None:
    wire, _ = guard(READ_WRITE)
    for line in [
        b'A1 SELECT "INBOX"\r\n',
        b"A2 UID STORE 5 +FLAGS.SILENT (\\Seen)\r\n",
        b'A3 UID MOVE 5 "Archive"\r\n',
        b'A4 UID COPY 5 "Archive"\r\n',
        b"A5 UID EXPUNGE 5\r\n",
    ]:
        wire.send(line)
    for line in [b"A6 EXPUNGE\r\n", b"A7 CLOSE\r\n", b"A8 STORE 1:* +FLAGS (\\Deleted)\r\n"]:
        with pytest.raises(GuardViolation):
            wire.send(line)


@given(st.text(max_size=60))
def test_every_search_value_is_a_quoted_string_or_a_literal(value: str) -> None:
    try:
        arg = imap_string(value)
    except InvalidInput:
        assert any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
        return
    if all(0x20 <= ord(c) < 0x7F for c in value):
        assert arg.startswith(b'"')
        assert arg.endswith(b'"')
        inner = arg[1:-1].replace(b"\\\\", b"").replace(b'\\"', b"")
        assert b'"' not in inner
        assert b"\\" not in inner
    else:
        assert arg == value.encode()  # sent as a counted literal, with CHARSET UTF-8


def test_query_terms_become_keys_with_quoted_values() -> None:
    criteria = query_criteria(
        parse_query('from:"A\\B" subject:ALL to:bob ") (" is:unread has:attachment'),
        now=NOW,
    )
    assert criteria.command_args() == [
        b"FROM", b'"A\\\\B"',
        b"SUBJECT", b'"ALL"',
        b"OR", b"TO", b'"bob"', b"CC", b'"bob"',
        b"TEXT", b'") ("',
        b"UNSEEN",
        b"NOT", b"HEADER", b"Content-Type", b'"text/"',
        b"NOT", b"HEADER", b"Content-Type", b'"multipart/alternative"',
    ]  # fmt: skip
    assert criteria.charset is None
    utf8 = query_criteria(parse_query("subject:München newer_than:7d"), now=NOW)
    assert utf8.command_args() == [
        b"CHARSET", b"UTF-8", b"SUBJECT", "München".encode(), b"SENTSINCE", b"21-Feb-2025",
    ]  # fmt: skip


@pytest.mark.parametrize("good", ["1.1", "1733011200.4127", "4294967295.4294967295"])
def test_ids_are_uidvalidity_dot_uid(good: str) -> None:
    assert str(parse_id(good)) == good


@pytest.mark.parametrize("bad", ["0.1", "1.0", "01.1", "4294967296.1", "1", "1.1.1", " 1.1", ""])
def test_other_ids_are_invalid(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_id(bad)
