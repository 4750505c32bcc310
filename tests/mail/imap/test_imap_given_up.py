"""A call the core gave up on (its timeout passed: the connector host cancels the call)
ends there, on the wire too. imapclient blocks in a worker thread that cancelling the
coroutine does not stop: left alone, a read went on talking on the shared connection
beside the next call, and an approved write went on to change the mailbox after the
agent and the audit log were told it was stopped."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from airlock.testing import run
from airlock_mail import mime
from airlock_mail.imap import ImapConnector
from airlock_mail.model import FolderList, Message, UnreadCount
from tests.gmail.responder import UIDVALIDITY, Script, gmail_responder


def connector(port: int) -> ImapConnector:
    settings = ImapConnector.parse_settings(
        {"host": "127.0.0.1", "port": port, "security": "none", "username": "me@gmail.com"},
        service="mail",
    )
    credentials = ImapConnector.parse_credentials({"password": "abcdefghijklmnop"}, service="mail")
    return ImapConnector(settings, credentials, service="mail")


async def give_up(call: asyncio.Future[object], script: Script) -> None:
    """Wait until the responder holds the call's command, then cancel the call as the
    connector host does when the core's timeout passes."""
    assert await asyncio.to_thread(script.held.wait, 10), "the held command never came"
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


def test_a_read_given_up_on_leaves_its_connection_to_no_other_call() -> None:
    with gmail_responder(Script(hold="STATUS")) as (port, script):
        mail = connector(port)

        async def scenario() -> FolderList:
            await mail.open()
            await give_up(asyncio.ensure_future(mail.call("count_unread", {})), script)
            after = asyncio.ensure_future(mail.call("list_folders", {}))
            script.release.set()
            folders = await after
            assert isinstance(folders, FolderList)
            await mail.close()
            return folders

        folders = run(scenario())
        assert folders.folders[0].name == "INBOX", "the next call is answered in full"
        assert script.ended[0].wait(10), "the given-up call's connection stayed open"
        held = script.connections[0]
        assert held[-1].split(b" ", 1)[1].startswith(b"STATUS"), (
            f"commands followed the given-up STATUS on its connection: {held}"
        )


def test_an_approved_write_given_up_on_changes_nothing_afterwards() -> None:
    with gmail_responder(Script(hold="SELECT")) as (port, script):
        mail = connector(port)
        unread = next(m for m in script.messages if not m.seen)

        async def scenario() -> None:
            await mail.open()
            write = mail.call("mark_read", {"id": f"{UIDVALIDITY}.{unread.uid}"})
            await give_up(asyncio.ensure_future(write), script)
            script.release.set()
            await mail.close()

        run(scenario())
        assert all(done.wait(10) for done in script.ended), "a connection stayed open"
        assert script.sent("UID STORE") == [], "the write went on after it was stopped"
        assert not unread.seen


def test_a_message_slow_to_parse_holds_up_no_other_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stranger's mail can take long to parse (the stdlib's HTML parser is quadratic
    on some input); that must not hold the connection's lock, or one such message, read
    once, stops every other call to the service until the parse ends (the core's
    timeout cannot stop a thread that is computing)."""
    parsing, release, finished = threading.Event(), threading.Event(), threading.Event()
    parse = mime.parse_message

    def slow_parse(*args: Any, **kwargs: Any) -> Message:
        parsing.set()
        release.wait(10)
        finished.set()
        return parse(*args, **kwargs)

    monkeypatch.setattr(mime, "parse_message", slow_parse)
    with gmail_responder() as (port, script):
        mail = connector(port)

        async def scenario() -> tuple[UnreadCount, bool, Message]:
            await mail.open()
            reading = asyncio.ensure_future(mail.call("get_message", {"id": f"{UIDVALIDITY}.101"}))
            assert await asyncio.to_thread(parsing.wait, 10)
            count = await mail.call("count_unread", {})
            parse_went_on = not finished.is_set()
            release.set()
            message = await reading
            await mail.close()
            assert isinstance(count, UnreadCount)
            assert isinstance(message, Message)
            return count, parse_went_on, message

        count, parse_went_on, message = run(scenario())
        assert parse_went_on, "count_unread waited for another call's parse"
        assert count.unread == sum(not m.seen for m in script.messages)
        assert message.subject == "Team lunch"
