"""Outages and dropped connections in both receive modes of the REST API and on
signal-cli's socket: the notifier backs off (the injected sleep records each wait), says
what is wrong in its health, and resumes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from airlock.framework.connectors import NoCredentials
from airlock.framework.notifiers import Reply
from airlock_notify_signal._notifier import SignalNotifier, SignalSettings
from airlock_notify_signal._receiving import MAX_SKIPPED_FRAME_BYTES
from tests.notifier_harness.waiting import Sleeps, eventually, use_notifier
from tests.signal.conftest import settings_for
from tests.signal.signal_api_server import SignalApiServer


def use(
    server: SignalApiServer,
    body: Callable[[SignalNotifier, Sleeps], Awaitable[None]],
    **settings: Any,
) -> Sleeps:
    def make(sleeps: Sleeps) -> SignalNotifier:
        config = SignalSettings.model_validate(settings_for(server, **settings))
        return SignalNotifier(config, NoCredentials(), sleep=sleeps)

    return use_notifier(make, body)


def next_reply(replies: AsyncIterator[Reply]) -> asyncio.Future[Reply]:
    return asyncio.ensure_future(asyncio.wait_for(anext(replies), 20))


def test_the_receive_mode_follows_what_about_says(signal_api: SignalApiServer) -> None:
    async def body(notifier: SignalNotifier, sleeps: Sleeps) -> None:
        waiting = next_reply(notifier.replies())
        await eventually(lambda: signal_api.receive_calls >= 1)
        signal_api.message("hello")
        assert (await waiting).text == "hello"
        expected = {"json-rpc": "websocket", "normal": "poll", "socket": "socket"}
        assert notifier.health()["receive"] == expected[signal_api.mode]

    use(signal_api, body)


def test_an_outage_shows_in_health_and_receiving_resumes(signal_api: SignalApiServer) -> None:
    async def body(notifier: SignalNotifier, sleeps: Sleeps) -> None:
        waiting = next_reply(notifier.replies())
        await eventually(lambda: signal_api.receive_calls >= 1)
        signal_api.stop()
        await eventually(lambda: len(sleeps.waited) >= 5)
        health = notifier.health()
        assert not health["ok"]
        kind = {
            "json-rpc": "ClientConnectorError",
            "normal": "ConnectError",
            "socket": f"nothing listens at {getattr(signal_api, 'path', '')}",
        }[signal_api.mode]
        assert health["detail"] == f"unreachable: {kind} (retrying in 8s)"
        signal_api.start()
        await eventually(lambda: notifier.health()["ok"], within=10)
        signal_api.message("back")
        assert (await waiting).text == "back"

    sleeps = use(signal_api, body, retry_initial=1, retry_max=8, poll_timeout=1)
    assert sleeps.waited[1:5] == [2, 4, 8, 8]


def test_a_dropped_websocket_is_reopened() -> None:
    server = SignalApiServer(mode="json-rpc")

    async def body(notifier: SignalNotifier, sleeps: Sleeps) -> None:
        replies = notifier.replies()
        waiting = next_reply(replies)
        await eventually(lambda: server.receive_calls == 1)
        server.drop_websockets()
        await eventually(lambda: server.receive_calls == 2)
        server.message("after the drop")
        assert (await waiting).text == "after the drop"
        assert sleeps.waited == [0.05]

    try:
        use(server, body)
    finally:
        server.close()


def test_a_websocket_dropped_after_it_brought_messages_is_reopened_at_once() -> None:
    """signal-cli-rest-api keeps nothing while no WebSocket is open: a connection that
    worked is followed by the next at once, not after the back-off's wait (in which the
    person's code could arrive and be dropped). One dropped before its first message
    waits, as above."""
    server = SignalApiServer(mode="json-rpc")

    async def body(notifier: SignalNotifier, sleeps: Sleeps) -> None:
        replies = notifier.replies()
        waiting = next_reply(replies)
        await eventually(lambda: server.receive_calls == 1)
        server.message("before the drop")
        assert (await waiting).text == "before the drop"
        server.drop_websockets()
        await eventually(lambda: server.receive_calls == 2)
        waiting = next_reply(replies)
        server.message("after the drop")
        assert (await waiting).text == "after the drop"
        assert sleeps.waited == []
        assert notifier.health()["ok"]

    try:
        use(server, body)
    finally:
        server.close()


def test_a_frame_no_signal_message_makes_reopens_the_websocket_at_once() -> None:
    """aiohttp refuses a frame over its cap from the frame's header and ends the
    connection (it cannot skip it). signal-cli-rest-api keeps nothing while no WebSocket
    is open, so after a connection that worked the next is opened at once, not after the
    back-off's wait, and the channel stays healthy. A new connection whose first frame
    is refused too (a stream that keeps going wrong) waits."""
    server = SignalApiServer(mode="json-rpc")
    huge = "x" * (MAX_SKIPPED_FRAME_BYTES + 1)

    async def body(notifier: SignalNotifier, sleeps: Sleeps) -> None:
        replies = notifier.replies()
        waiting = next_reply(replies)
        await eventually(lambda: server.receive_calls == 1)
        server.message("before")
        assert (await waiting).text == "before"
        server.frame(huge)
        await eventually(lambda: server.receive_calls == 2, within=20)
        assert sleeps.waited == []
        assert notifier.health()["ok"]
        server.frame(huge)  # the new connection's first frame
        await eventually(lambda: server.receive_calls == 3, within=20)
        assert sleeps.waited == [0.05]
        waiting = next_reply(replies)
        server.message("after")
        assert (await waiting).text == "after"

    try:
        use(server, body)
    finally:
        server.close()


def test_a_wrong_receive_mode_is_reported_and_retried() -> None:
    server = SignalApiServer(mode="json-rpc")

    async def body(notifier: SignalNotifier, sleeps: Sleeps) -> None:
        replies = notifier.replies()
        waiting = next_reply(replies)
        await eventually(lambda: bool(sleeps.waited))
        assert notifier.health()["detail"].startswith(
            "signal-cli-rest-api refused (400): receive over the WebSocket in json-rpc mode"
        )
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)

    try:
        use(server, body, receive="poll")
    finally:
        server.close()
