"""Signal through signal-cli's own JSON-RPC socket (``socket:`` in the settings), on an
in-process runtime against a local signal-cli daemon on a real Unix socket: what differs
from the REST API (every scenario every messenger passes runs on the socket too, through
the ``signal_api`` fixture). Messages that come twice count once; messages that wait on
Signal's server (``--receive-mode=manual``) are fetched; another account's are not
ours; and a socket other users could connect to is never used."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError

from airlock.daemon.listeners import listen_to
from airlock.daemon.runtime import Runtime
from airlock.errors import NotifierError
from airlock.models import NoCredentials
from airlock.security.replies import ReplyHandler
from airlock.testing import contract_prompt
from airlock_notify_signal._cli_socket import MAX_LINE_BYTES, MAX_SKIPPED_BYTES, SignalCli
from airlock_notify_signal._notifier import SignalNotifier, SignalSettings
from tests.notifier_harness.runtime import Phone, ask, audit_events, status_of
from tests.notifier_harness.scenarios import answers, approve_with_a_good_reply, play, settled
from tests.notifier_harness.waiting import eventually
from tests.signal.conftest import SignalDouble
from tests.signal.signal_api_server import BOT, ENDLESS_LIMIT, PERSON, PERSON_UUID, STRANGER
from tests.signal.signal_cli_socket import SignalCliSocketServer


@pytest.fixture
def on_start() -> Iterator[SignalDouble]:
    server = SignalCliSocketServer(receive_mode="on-start")
    yield SignalDouble(server)
    server.close()


def test_a_message_that_comes_twice_counts_once(tmp_path: Path, on_start: SignalDouble) -> None:
    """signal-cli's default receive mode pushes each message to a connection that also
    subscribed twice (plain and wrapped): one wrong code must not count as two, which
    with ``max_failures: 2`` would lock approvals."""
    server = on_start.server
    assert isinstance(server, SignalCliSocketServer)

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await on_start.prompt(created.code)
        on_start.say("000000", to=prompt)
        on_start.stranger_says("hello")
        await settled(on_start)
        assert not any("too many wrong codes" in t for t in on_start.texts())
        assert len(audit_events(runtime, "approval_failed")) == 1
        assert len(audit_events(runtime, "reply_ignored")) == 1
        on_start.say(phone.code(), to=prompt)
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "approved"

    play(tmp_path, on_start, scenario, approvals={"max_failures": 2})
    subscribed = [r for r in server.requests if r["method"] == "subscribeReceive"]
    assert [r["params"] for r in subscribed] == [{"account": BOT}]


def test_messages_waiting_for_a_subscriber_are_fetched(tmp_path: Path) -> None:
    """With ``--receive-mode=manual`` signal-cli receives only for subscribers (messages
    wait on Signal's server meanwhile): the notifier subscribes when it connects."""
    server = SignalCliSocketServer(receive_mode="manual")
    messenger = SignalDouble(server)

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        messenger.say(phone.code(), to=await messenger.prompt(created.code))
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "approved"
        prompt = next(m for m in server.sent if f"access request {created.code}" in m["message"])
        assert (prompt["account"], prompt["recipient"]) == (BOT, [PERSON])

    try:
        play(tmp_path, messenger, scenario)
    finally:
        server.close()


@pytest.mark.parametrize("mode", [0o777, 0o766, 0o770])
def test_a_socket_other_users_could_connect_to_is_never_used(tmp_path: Path, mode: int) -> None:
    """Whoever can connect to signal-cli reads the person's replies (codes included) and
    sends from the number: a socket with a write bit for its group or others gets no
    prompt and no request at all, and ``airlock status`` says why."""
    server = SignalCliSocketServer(socket_mode=mode)
    messenger = SignalDouble(server)
    bits = f"{mode:o}"

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        await ask(runtime)
        await eventually(lambda: "lets other users connect" in _detail(runtime))
        assert f"(mode {bits})" in _detail(runtime)
        assert server.requests == []
        assert server.receive_calls == 0
        assert answers(messenger, "") == []
        assert os.stat(server.path).st_mode & 0o777 == mode

    try:
        play(tmp_path, messenger, scenario)
    finally:
        server.close()


def _detail(runtime: Runtime) -> str:
    return str(runtime.notifiers["signal"].health().get("detail", ""))


def test_a_stranger_is_heard_once_and_only_as_a_stranger(
    tmp_path: Path, on_start: SignalDouble
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        on_start.stranger_says("/revoke")
        await settled(on_start)
        (ignored,) = audit_events(runtime, "reply_ignored")
        assert ignored["sender"] == STRANGER

    play(tmp_path, on_start, scenario)


def test_a_stranger_s_line_over_the_cap_is_skipped_and_what_follows_is_read(
    tmp_path: Path, on_start: SignalDouble
) -> None:
    """Anyone can write to the number, and signal-cli writes a control character of their
    text as six bytes (``\\u0001``): a stranger's message can make a line over the cap.
    That line is skipped, not the connection ended: the person's code right behind it,
    already written to the connection, still approves, and nothing was reconnected."""
    server = on_start.server
    assert isinstance(server, SignalCliSocketServer)

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await on_start.prompt(created.code)
        huge = notification(STRANGER, "u-stranger", prompt + 1, {"message": "\x01" * 200_000})
        assert len(huge) > MAX_LINE_BYTES
        code = {"message": phone.code(), "quote": {"id": prompt}}
        server.line(huge + "\n" + notification(PERSON, PERSON_UUID, prompt + 2, code))
        await eventually(lambda: not runtime.approvals.pending(), within=20)
        assert await status_of(runtime, created) == "approved"
        assert server.receive_calls == 1  # the same connection went on

    play(tmp_path, on_start, scenario)


def test_a_line_that_never_ends_ends_the_connection_at_a_bound(
    tmp_path: Path, on_start: SignalDouble
) -> None:
    """A line over the cap is skipped, but not without end: a signal-cli whose stream
    went wrong (no Signal message is that long) gets its connection ended, and the
    new one serves the person's reply."""
    server = on_start.server
    assert isinstance(server, SignalCliSocketServer)

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        await eventually(lambda: server.receive_calls == 1)
        server.endless_line()
        await eventually(lambda: server.endless_written, within=30)
        await approve_with_a_good_reply(runtime, phone, on_start)
        assert server.receive_calls == 2

    play(tmp_path, on_start, scenario)
    (written,) = server.endless_written
    assert written < ENDLESS_LIMIT // 2  # stopped near the bound, not read to the end
    assert MAX_SKIPPED_BYTES <= ENDLESS_LIMIT // 4


def test_a_line_cut_off_by_a_lost_connection_is_not_read(
    tmp_path: Path, on_start: SignalDouble
) -> None:
    """A connection lost mid-line: what came of the line is not read as a message (here
    the person's wrong code, complete but for its newline), and the connection is
    opened again: the person's next reply approves."""
    server = on_start.server
    assert isinstance(server, SignalCliSocketServer)

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await on_start.prompt(created.code)
        wrong = {"message": "000000", "quote": {"id": prompt}}
        server.cut_off(notification(PERSON, PERSON_UUID, prompt + 1, wrong))
        await eventually(lambda: server.receive_calls == 2, within=20)
        await settled(on_start)
        assert not audit_events(runtime, "approval_failed")
        on_start.say(phone.code(), to=prompt)
        await eventually(lambda: not runtime.approvals.pending(), within=20)
        assert await status_of(runtime, created) == "approved"

    play(tmp_path, on_start, scenario)


def notification(source: str, uuid: str, timestamp: int, data: dict[str, Any]) -> str:
    """A message as signal-cli pushes it, plain (its default receive mode)."""
    envelope = {
        "source": source,
        "sourceNumber": source,
        "sourceUuid": uuid,
        "sourceDevice": 1,
        "timestamp": timestamp,
        "dataMessage": {"timestamp": timestamp, **data},
    }
    params = {"envelope": envelope, "account": BOT}
    return json.dumps({"jsonrpc": "2.0", "method": "receive", "params": params})


@pytest.mark.parametrize(
    ("path", "problem"),
    [("signal-cli/socket", "must be an absolute path"), ("/run/a\0b", "must not hold a NUL")],
)
def test_a_socket_setting_no_socket_can_have_is_refused_with_the_config(
    path: str, problem: str
) -> None:
    """Refused when the config is read, with what is wrong: a NUL in the path got as far
    as the first connection, whose ValueError ended receiving for good."""
    with pytest.raises(ValidationError, match=problem):
        SignalSettings.model_validate({"socket": path, "number": BOT, "recipient": PERSON})


def test_what_a_hostile_signal_cli_says_of_a_send_is_one_clean_line(
    on_start: SignalDouble,
) -> None:
    """signal-cli's refusal (``error.message``) and a recipient's failure type reach logs,
    ``airlock status`` and the terminal: one line, no terminal escapes, bounded."""
    server = on_start.server
    hostile = "Untrusted\x1b]0;owned\x07 identity\nsigned: the person " + "x" * 400
    server.fail("send", -1, hostile)
    results = [{"recipientAddress": {"number": PERSON}, "type": hostile}]
    server.fail("send", 0, {"result": {"timestamp": 1, "results": results}})

    async def main() -> list[str]:
        cli = SignalCli(server.path, BOT)
        said = []
        try:
            for _ in range(2):
                with pytest.raises(NotifierError) as refused:
                    await cli.send(PERSON, "hello")
                said.append(str(refused.value))
        finally:
            await cli.aclose()
        return said

    refusal, undelivered = asyncio.run(main())
    assert refusal.startswith("signal-cli refused: Untrusted ]0;owned identity signed: the")
    assert undelivered.startswith("signal: the message was not delivered: Untrusted ]0;owned")
    for said in (refusal, undelivered):
        assert not any(c in said for c in "\x1b\x07\n")
        assert len(said) < 260
    assert server.sent == []


def test_reloads_keep_one_connection_subscribed_once(on_start: SignalDouble) -> None:
    """Each reload's notifier takes signal-cli's connection over whole: one connection,
    one subscription (subscribed again by each, a message came once more per reload),
    each message handled once; the connection a prompt sent during the handover opened
    is closed at once."""
    server = on_start.server
    assert isinstance(server, SignalCliSocketServer)

    class Handled:
        def __init__(self) -> None:
            self.texts: list[str] = []

        async def handle(self, notifier: str, reply: Any) -> None:
            self.texts.append(reply.text)

    async def main() -> None:
        settings = SignalSettings.model_validate(on_start.settings())
        handled = Handled()
        replies = cast(ReplyHandler, handled)
        notifiers = [SignalNotifier(settings, NoCredentials())]
        listeners = listen_to({"signal": notifiers[0]}, replies)
        try:
            for reload in range(3):
                on_start.say(f"before reload {reload}")
                await eventually(lambda n=reload: len(handled.texts) == n + 1)
                notifiers.append(SignalNotifier(settings, NoCredentials()))
                await notifiers[-1].send(contract_prompt())  # its own connection, at first
                listeners = listen_to({"signal": notifiers[-1]}, replies, before=listeners)
                await eventually(lambda ls=listeners: ls["signal"].receiving)
                await eventually(lambda: len(server._connections) == 1)
            on_start.say("the last")
            await eventually(lambda: "the last" in handled.texts)
            subscribed = [r for r in server.requests if r["method"] == "subscribeReceive"]
            assert len(subscribed) == 1
            assert handled.texts == [f"before reload {n}" for n in range(3)] + ["the last"]
        finally:
            listeners["signal"].stop()
            await asyncio.gather(listeners["signal"].task, return_exceptions=True)
            for notifier in notifiers:
                await notifier.close()
        await eventually(lambda: not server._connections)

    asyncio.run(main())


def test_a_prompt_sent_during_the_handover_is_delivered_and_remembered(
    on_start: SignalDouble,
) -> None:
    """The new notifier sends a prompt through a connection of its own while it takes
    over the old one's: its own is closed only once the send has its answer (closed at
    once, the send failed though signal-cli sent it, and the prompt on the phone was
    not remembered)."""
    server = on_start.server
    assert isinstance(server, SignalCliSocketServer)

    async def main() -> None:
        settings = SignalSettings.model_validate(on_start.settings())
        old, new = (
            SignalNotifier(settings, NoCredentials()),
            SignalNotifier(settings, NoCredentials()),
        )
        listeners = listen_to({"signal": old}, cast(ReplyHandler, object()))
        try:
            await eventually(lambda: listeners["signal"].receiving)
            server.hold_sends()
            prompt = contract_prompt()
            sending = asyncio.ensure_future(new.send(prompt))
            await eventually(lambda: server.held == 1)
            new.carry_over(old)
            server.release_sends()
            await sending
            assert new.recall(prompt.request_id) is not None
            assert len(server.sent) == 1
        finally:
            listeners["signal"].stop()
            await asyncio.gather(listeners["signal"].task, return_exceptions=True)
            await old.close()
            await new.close()

    asyncio.run(main())


def test_a_reload_to_another_person_does_not_take_over_the_connection(
    on_start: SignalDouble,
) -> None:
    """The connection sorts what it receives by who wrote it: a notifier for another
    person keeps its own (adopted, the new person's messages waited among strangers')."""

    async def main() -> None:
        old = SignalNotifier(
            SignalSettings.model_validate(on_start.settings(recipient="+15550003000")),
            NoCredentials(),
        )
        new = SignalNotifier(SignalSettings.model_validate(on_start.settings()), NoCredentials())
        await old.send(contract_prompt())  # its connection open
        new.carry_over(old)
        assert new._cli is not old._cli
        assert old._cli is not None, "closed with the old notifier"
        await old.close()
        await new.close()

    asyncio.run(main())
