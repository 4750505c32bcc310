"""Anyone can write to the Signal number, and the sender picks even the timestamp: what
signal-cli-rest-api hands over is hostile input. On an in-process runtime (real notifier,
approvals and audit) against the local REST API, in both modes: over-long texts, envelopes
of the wrong shape or with an impossible timestamp, an oversized WebSocket frame and a
polling answer that never ends are bounded or skipped, and each time the person's next
reply still approves (receiving went on). A burst of messages: test_bursts."""

from __future__ import annotations

from pathlib import Path

from airlock.daemon.runtime import Runtime
from airlock.framework.notifiers import Reply
from airlock_notify_signal._envelopes import MAX_TEXT
from airlock_notify_signal._receiving import MAX_FRAME_TEXT, MAX_SKIPPED_FRAME_BYTES
from airlock_notify_signal._rest_api import MAX_RECEIVE_BYTES
from tests.notifier_harness.runtime import Phone, ask, audit_events
from tests.notifier_harness.scenarios import (
    HostileInputScenarios,
    approve_with_a_good_reply,
    play,
    settled,
    still_pending_then_a_good_reply_approves,
)
from tests.notifier_harness.waiting import eventually
from tests.signal.conftest import SignalDouble
from tests.signal.signal_api_server import (
    ENDLESS_LIMIT,
    PERSON,
    PERSON_UUID,
    STRANGER,
    SignalApiServer,
)

MIB = 1 << 20


class TestSignalHostileInput(HostileInputScenarios):
    max_text = MAX_TEXT
    long_text = MIB // 2  # in one WebSocket frame, under its limit

    def test_envelopes_of_the_wrong_shape_or_time_are_skipped_not_coerced(
        self, tmp_path: Path, messenger: SignalDouble, handed: list[Reply]
    ) -> None:
        signal_api = messenger.server

        async def scenario(runtime: Runtime, phone: Phone) -> None:
            created = await ask(runtime)
            prompt = await messenger.prompt(created.code)
            person = {"source": PERSON, "sourceNumber": PERSON, "sourceUuid": PERSON_UUID}
            # A timestamp past the year 9999, from a stranger and from the person.
            for source in (STRANGER, PERSON):
                signal_api.envelope(
                    {
                        "source": source,
                        "sourceNumber": source,
                        "timestamp": 2**62,
                        "dataMessage": {"timestamp": 2**62, "message": "/pending"},
                    }
                )
            signal_api.envelope({**person, "timestamp": prompt, "dataMessage": {"message": 123456}})
            signal_api.envelope({**person, "timestamp": prompt, "dataMessage": "/pending"})
            signal_api.envelope(
                {**person, "timestamp": str(prompt), "dataMessage": {"message": "x"}}
            )
            signal_api.envelope({**person, "sourceNumber": 15550002000, "timestamp": prompt})
            garbage: object = {"message": "/pending"}
            for depth in range(200):
                garbage = [garbage, {"dataMessage": garbage}] if depth < 8 else [garbage]
            signal_api.envelope({**person, "timestamp": prompt, "dataMessage": {"quote": garbage}})
            # The person's own code quoting the prompt, with the quote's id as a string.
            signal_api.envelope(
                {
                    **person,
                    "timestamp": prompt + 1,
                    "dataMessage": {"message": phone.code(), "quote": {"id": str(prompt)}},
                }
            )
            await still_pending_then_a_good_reply_approves(
                runtime, phone, messenger, handed, created
            )

        play(tmp_path, messenger, scenario)
        assert [r.text for r in handed][:1] == ["/help"]  # nothing malformed went through

    def test_a_websocket_frame_over_the_limit_or_too_deep_is_skipped_on_the_same_connection(
        self, tmp_path: Path, handed: list[Reply]
    ) -> None:
        """A frame that cannot be parsed, or is longer than any envelope Airlock reads, is
        skipped; the connection goes on, so nothing that signal-cli-rest-api relays meanwhile
        is lost (it keeps nothing while no WebSocket is open)."""
        server = SignalApiServer(mode="json-rpc")
        messenger = SignalDouble(server)
        try:

            async def scenario(runtime: Runtime, phone: Phone) -> None:
                await eventually(lambda: server.receive_calls == 1)
                server.frame("[" * 100_000)  # deeper than the JSON parser's recursion
                messenger.say("/help")
                await eventually(lambda: any(r.text == "/help" for r in handed), within=20)
                assert server.receive_calls == 1  # the same connection goes on
                # A stranger's message in a 2 MiB frame: over what is parsed, under what
                # aiohttp takes off the connection.
                messenger.stranger_says("9" * (2 * MIB))
                await eventually(server.relay_idle, within=20)
                await approve_with_a_good_reply(runtime, phone, messenger)
                assert server.receive_calls == 1  # the same connection still
                assert not audit_events(runtime, "reply_ignored")  # skipped, not parsed

            play(tmp_path, messenger, scenario)
        finally:
            server.close()
        assert MAX_FRAME_TEXT < 2 * MIB < MAX_SKIPPED_FRAME_BYTES

    def test_a_polling_answer_that_never_ends_is_cut_at_the_cap(self, tmp_path: Path) -> None:
        server = SignalApiServer(mode="normal")
        try:

            async def scenario(runtime: Runtime, phone: Phone) -> None:
                server.answer_endless()
                await eventually(lambda: server.endless_written, within=20)
                await approve_with_a_good_reply(runtime, phone, SignalDouble(server))

            play(tmp_path, SignalDouble(server), scenario)
        finally:
            server.close()
        (written,) = server.endless_written
        # Stopped near the cap (plus what the socket buffers hold), not read to the end.
        assert written < ENDLESS_LIMIT // 2
        assert MAX_RECEIVE_BYTES < ENDLESS_LIMIT // 4


def test_a_message_to_another_account_is_not_an_answer(
    tmp_path: Path, messenger: SignalDouble
) -> None:
    """signal-cli serving several numbers (and signal-cli-rest-api in json-rpc mode, which
    pushes every number's messages to every WebSocket) hands over every account's
    messages: the person's code sent to another of them, which an agent could ask them
    for, approves nothing and counts as no wrong code. The same code to this account then
    approves."""
    server = messenger.server

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await messenger.prompt(created.code)
        envelope = {
            "source": PERSON,
            "sourceNumber": PERSON,
            "sourceUuid": PERSON_UUID,
            "sourceDevice": 1,
            "timestamp": prompt + 1,
            "dataMessage": {"message": phone.code(), "quote": {"id": prompt}},
        }
        server.item({"envelope": envelope, "account": "+15550009999"})
        await settled(messenger)
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert not audit_events(runtime, "approval_failed")
        messenger.say(phone.code(), to=prompt)
        await eventually(lambda: not runtime.approvals.pending())

    play(tmp_path, messenger, scenario)
