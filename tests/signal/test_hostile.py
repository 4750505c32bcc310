"""Anyone can write to the Signal number, and the sender picks even the timestamp: what
signal-cli-rest-api hands over is hostile input. On an in-process runtime (real notifier,
approvals and audit) against the local REST API, in both modes: over-long texts, envelopes
of the wrong shape or with an impossible timestamp, an oversized WebSocket frame and a
polling answer that never ends are bounded or skipped, and each time the person's next
reply still approves (receiving went on)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import airlock_notify_signal.plugin as signal_plugin
from airlock.daemon.runtime import Runtime
from airlock.framework.notifiers import Reply
from airlock.security.replies import ReplyHandler
from airlock_notify_signal._envelopes import MAX_TEXT
from airlock_notify_signal._receiving import MAX_FRAME_BYTES
from airlock_notify_signal._rest_api import MAX_RECEIVE_BYTES
from tests.notifier_harness.runtime import Phone, ask, audit_events, make_runtime, run_scenario
from tests.notifier_harness.waiting import eventually
from tests.signal.conftest import settings_for
from tests.signal.signal_api_server import (
    ENDLESS_LIMIT,
    PERSON,
    PERSON_UUID,
    STRANGER,
    SignalApiServer,
)

MIB = 1 << 20


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[Reply]:
    """Every Reply the notifier hands to core, as core's reply handler gets it."""
    seen: list[Reply] = []
    original = ReplyHandler.handle

    async def handle(self: ReplyHandler, notifier: str, reply: Reply) -> None:
        seen.append(reply)
        await original(self, notifier, reply)

    monkeypatch.setattr(ReplyHandler, "handle", handle)
    return seen


def run(
    tmp_path: Path,
    server: SignalApiServer,
    scenario: Callable[[Runtime, Phone], Awaitable[None]],
) -> None:
    runtime, phone = make_runtime(tmp_path / "home", signal_plugin, "signal", settings_for(server))
    run_scenario(runtime, phone, scenario)


async def approve_with_a_good_reply(
    runtime: Runtime, phone: Phone, server: SignalApiServer
) -> None:
    created = await ask(runtime)
    await eventually(lambda: server.prompt_for(created.code))
    prompt = server.prompt_for(created.code)
    assert prompt is not None
    server.quote_reply(phone.code(), prompt)
    await eventually(lambda: not runtime.approvals.pending(), within=20)
    (verified,) = audit_events(runtime, "totp_verified")
    assert verified["request"] == created.id


def test_long_texts_never_reach_core_and_a_strangers_is_still_audited(
    tmp_path: Path, signal_api: SignalApiServer, handed: list[Reply]
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        signal_api.message("9" * (MIB // 2), source=STRANGER, uuid="u-stranger")
        signal_api.message("1" * (MIB // 2))  # the person's own, too long: dropped
        await eventually(lambda: audit_events(runtime, "reply_ignored"), within=20)
        await approve_with_a_good_reply(runtime, phone, signal_api)
        (ignored,) = audit_events(runtime, "reply_ignored")
        assert ignored["sender"] == STRANGER
        assert "9" * 64 not in str(ignored)

    run(tmp_path, signal_api, scenario)
    assert max(len(r.text) for r in handed) <= MAX_TEXT
    assert [r.text for r in handed if not r.known_sender] == [""]
    assert not [r for r in handed if r.known_sender and r.text.startswith("111")]


def test_envelopes_of_the_wrong_shape_or_time_are_skipped_not_coerced(
    tmp_path: Path, signal_api: SignalApiServer, handed: list[Reply]
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        await eventually(lambda: signal_api.prompt_for(created.code))
        prompt = signal_api.prompt_for(created.code)
        person = {"source": PERSON, "sourceNumber": PERSON, "sourceUuid": PERSON_UUID}
        now = prompt or 0
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
        signal_api.envelope({**person, "timestamp": now, "dataMessage": {"message": 123456}})
        signal_api.envelope({**person, "timestamp": now, "dataMessage": "/pending"})
        signal_api.envelope({**person, "timestamp": str(now), "dataMessage": {"message": "x"}})
        signal_api.envelope({**person, "sourceNumber": 15550002000, "timestamp": now})
        garbage: object = {"message": "/pending"}
        for depth in range(200):
            garbage = [garbage, {"dataMessage": garbage}] if depth < 8 else [garbage]
        signal_api.envelope({**person, "timestamp": now, "dataMessage": {"quote": garbage}})
        # The person's own code quoting the prompt, with the quote's id as a string.
        signal_api.envelope(
            {
                **person,
                "timestamp": now + 1,
                "dataMessage": {"message": phone.code(), "quote": {"id": str(prompt)}},
            }
        )
        signal_api.message("/help")
        await eventually(lambda: any(r.text == "/help" for r in handed), within=20)
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert not audit_events(runtime, "totp_verified")
        assert prompt is not None
        signal_api.quote_reply(phone.code(), prompt)
        await eventually(lambda: not runtime.approvals.pending(), within=20)
        assert audit_events(runtime, "totp_verified")

    run(tmp_path, signal_api, scenario)
    assert [r.text for r in handed][:1] == ["/help"]  # nothing malformed went through


def test_a_websocket_frame_over_the_limit_or_too_deep_is_dropped_and_receiving_goes_on(
    tmp_path: Path, handed: list[Reply]
) -> None:
    server = SignalApiServer(mode="json-rpc")
    try:

        async def scenario(runtime: Runtime, phone: Phone) -> None:
            await eventually(lambda: server.receive_calls == 1)
            server.frame("[" * 100_000)  # deeper than the JSON parser's recursion
            server.message("/help")
            await eventually(lambda: any(r.text == "/help" for r in handed), within=20)
            assert server.receive_calls == 1  # the same connection goes on
            # A stranger's message in a 2 MiB frame: over our 1 MiB, under aiohttp's 4.
            server.message("9" * (2 * MIB), source=STRANGER, uuid="u-stranger")
            await eventually(lambda: server.receive_calls == 2, within=20)  # reconnected
            await approve_with_a_good_reply(runtime, phone, server)
            assert not audit_events(runtime, "reply_ignored")  # refused before reading

        run(tmp_path, server, scenario)
    finally:
        server.close()
    assert MAX_FRAME_BYTES < 2 * MIB


def test_a_polling_answer_that_never_ends_is_cut_at_the_cap(
    tmp_path: Path, handed: list[Reply]
) -> None:
    server = SignalApiServer(mode="normal")
    try:

        async def scenario(runtime: Runtime, phone: Phone) -> None:
            server.answer_endless()
            await eventually(lambda: server.endless_written, within=20)
            await approve_with_a_good_reply(runtime, phone, server)

        run(tmp_path, server, scenario)
    finally:
        server.close()
    (written,) = server.endless_written
    # Stopped near the cap (plus what the socket buffers hold), not read to the end.
    assert written < ENDLESS_LIMIT // 2
    assert MAX_RECEIVE_BYTES < ENDLESS_LIMIT // 4
