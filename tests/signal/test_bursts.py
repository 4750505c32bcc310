"""A burst of messages from strangers must not cost the person their reply.

Anyone who knows the number can write to it, as fast as Signal lets them. On an
in-process runtime (real notifier, approvals and audit) against each local stand-in
(signal-cli-rest-api polled and over its WebSocket, signal-cli's socket): while the
notifier is busy (a send of its left unanswered), 2,200 messages from a stranger arrive,
each as long as Signal apps send inline (over 4 MiB in all), then the person's code. The
request is approved. Where messages wait in Airlock (the socket, the WebSocket), the
strangers' overflow is dropped and logged, never with its text.
"""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from airlock.daemon.runtime import Runtime
from airlock_notify_signal._rest_api import MAX_RECEIVE_BYTES
from airlock_notify_signal._waiting import MAX_WAITING
from tests.notifier_harness.runtime import Phone, ask, audit_events, status_of
from tests.notifier_harness.scenarios import play
from tests.notifier_harness.waiting import eventually
from tests.signal.conftest import SignalDouble
from tests.signal.signal_api_server import STRANGER

MARK = "stranger-text:"
TEXT = MARK + "x" * (2000 - len(MARK))
"""As long as a Signal app sends a text inline (2,000 bytes; longer goes as a file)."""
BURST = 2200


def test_the_person_s_code_gets_through_a_burst_from_a_stranger(
    tmp_path: Path, messenger: SignalDouble
) -> None:
    server = messenger.server

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await messenger.prompt(created.code)
        server.hold_sends()
        messenger.say("/pending")  # answered with a send, held: the notifier is busy
        await eventually(lambda: server.held == 1)
        server.flood(TEXT, BURST)
        messenger.say(phone.code(), to=prompt)
        await eventually(server.all_handed_over, within=60)
        server.release_sends()
        await eventually(lambda: not runtime.approvals.pending(), within=60)
        assert await status_of(runtime, created) == "approved"
        (ignored,) = audit_events(runtime, "reply_ignored")  # audited, throttled
        assert ignored["sender"] == STRANGER

    with capture_logs() as logged:
        play(tmp_path, messenger, scenario)
    assert BURST * len(TEXT) > MAX_RECEIVE_BYTES  # more than one polling answer holds
    assert MARK not in repr(logged)
    dropped = [e for e in logged if e["event"].startswith("signal_receive_drop")]
    if server.mode == "normal":  # fetched in parts; the rest waited on Signal's server
        assert dropped == []
        return
    assert server.relay_dropped == 0  # the WebSocket was read while the notifier was busy
    assert [(e["event"], e["lane"]) for e in dropped] == [
        ("signal_receive_dropping", "others"),
        ("signal_receive_dropped", "others"),
    ]
    assert dropped[-1]["count"] == BURST - MAX_WAITING
