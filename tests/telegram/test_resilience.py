"""Rate limits, conflicts and outages: the notifier waits as told (the injected sleep
records each wait instead of sleeping it), keeps receiving afterwards, says what is wrong
in its health, and never lets the bot token out."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airlock.errors import NotifierError
from airlock.framework.notifiers import Prompt, Reply
from airlock_notify_telegram._notifier import (
    TelegramCredentials,
    TelegramNotifier,
    TelegramSettings,
)
from tests.notifier_harness.waiting import Sleeps, eventually, use_notifier
from tests.telegram.bot_api_server import BotApiServer
from tests.telegram.conftest import settings_for

PROMPT = Prompt(
    request_id="req_1",
    code="K7QX",
    title="Airlock: access request K7QX",
    lines=[("Services", "echo")],
    reason="read my echo",
    expires_at=datetime.now(UTC) + timedelta(minutes=5),
)


def notifier(bot_api: BotApiServer, sleeps: Sleeps, **settings: Any) -> TelegramNotifier:
    config = TelegramSettings.model_validate(settings_for(bot_api, **settings))
    return TelegramNotifier(config, TelegramCredentials(bot_token=bot_api.token), sleep=sleeps)


def use(
    bot_api: BotApiServer,
    body: Callable[[TelegramNotifier, Sleeps], Awaitable[None]],
    **settings: Any,
) -> Sleeps:
    return use_notifier(lambda sleeps: notifier(bot_api, sleeps, **settings), body)


async def first_reply(replies: AsyncIterator[Reply], within: float = 10.0) -> Reply:
    return await asyncio.wait_for(anext(replies), within)


def test_a_429_on_send_is_waited_out_as_told_then_sent(bot_api: BotApiServer) -> None:
    bot_api.fail("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)

    async def body(telegram: TelegramNotifier, sleeps: Sleeps) -> None:
        delivery = await telegram.send(PROMPT)
        assert int(delivery.ref) in bot_api.messages

    sleeps = use(bot_api, body)
    assert sleeps.waited == [7]
    assert len(bot_api.calls_of("sendMessage")) == 2


def test_a_429_longer_than_a_prompt_can_wait_fails_the_send(bot_api: BotApiServer) -> None:
    bot_api.fail("sendMessage", 429, "Too Many Requests: retry after 120", retry_after=120)

    async def body(telegram: TelegramNotifier, sleeps: Sleeps) -> None:
        with pytest.raises(NotifierError, match="Too Many Requests"):
            await telegram.send(PROMPT)

    assert use(bot_api, body).waited == []


def test_a_429_on_get_updates_waits_retry_after_then_receives(bot_api: BotApiServer) -> None:
    bot_api.fail("getUpdates", 429, "Too Many Requests: retry after 5", retry_after=5)

    async def body(telegram: TelegramNotifier, sleeps: Sleeps) -> None:
        mid = int((await telegram.send(PROMPT)).ref)
        bot_api.say("123456", reply_to=mid)
        reply = await first_reply(telegram.replies())
        assert (reply.text, reply.in_reply_to) == ("123456", str(mid))

    assert use(bot_api, body).waited == [5]


def test_409_conflicts_back_off_doubling_then_recover(bot_api: BotApiServer) -> None:
    conflict = "Conflict: terminated by other getUpdates request"
    bot_api.fail("getUpdates", 409, conflict, times=5)

    async def body(telegram: TelegramNotifier, sleeps: Sleeps) -> None:
        replies = telegram.replies()
        waiting = asyncio.ensure_future(first_reply(replies))
        await eventually(lambda: len(sleeps.waited) >= 2)
        health = telegram.health()
        assert not health["ok"]
        assert health["detail"].startswith("conflict: another program polls this bot")
        bot_api.say("/pending")
        reply = await waiting
        assert reply.text == "/pending"
        assert telegram.health()["ok"]

    sleeps = use(bot_api, body, retry_initial=1, retry_max=8)
    assert sleeps.waited == [1, 2, 4, 8, 8]


def test_a_second_poller_is_a_conflict_that_passes(bot_api: BotApiServer) -> None:
    async def body(telegram: TelegramNotifier, sleeps: Sleeps) -> None:
        other = notifier(bot_api, Sleeps())
        replies = telegram.replies()
        waiting = asyncio.ensure_future(first_reply(replies))
        await eventually(lambda: len(bot_api.calls_of("getUpdates")) >= 1)
        intruder = asyncio.ensure_future(anext(other.replies()))  # a second daemon
        await eventually(lambda: bool(sleeps.waited))
        assert "conflict" in telegram.health()["detail"]
        intruder.cancel()
        await other.close()
        bot_api.say("deny")
        assert (await waiting).text in ("deny",)

    use(bot_api, body, retry_initial=0.05)


def test_an_outage_shows_in_health_and_receiving_resumes(bot_api: BotApiServer) -> None:
    async def body(telegram: TelegramNotifier, sleeps: Sleeps) -> None:
        replies = telegram.replies()
        waiting = asyncio.ensure_future(first_reply(replies, within=20))
        await eventually(lambda: len(bot_api.calls_of("getUpdates")) >= 1)
        bot_api.stop()
        await eventually(lambda: len(sleeps.waited) >= 5)
        health = telegram.health()
        assert not health["ok"]
        assert health["detail"] == "unreachable: ConnectError (retrying in 8s)"
        with pytest.raises(NotifierError, match="unreachable: ConnectError"):
            await telegram.send(PROMPT)
        bot_api.start()
        bot_api.say("/pending")
        assert (await waiting).text == "/pending"
        assert telegram.health()["ok"]

    sleeps = use(bot_api, body, retry_initial=1, retry_max=8, poll_timeout=1)
    assert sleeps.waited[:5] == [1, 2, 4, 8, 8]


def test_without_a_token_it_says_how_to_set_it_up(bot_api: BotApiServer) -> None:
    async def main() -> None:
        config = TelegramSettings.model_validate(settings_for(bot_api))
        telegram = TelegramNotifier(config, TelegramCredentials())
        assert telegram.health() == {
            "ok": False,
            "detail": "no bot token in the vault: run `airlock telegram setup`",
        }
        with pytest.raises(NotifierError, match="airlock telegram setup"):
            await telegram.send(PROMPT)
        replies = asyncio.ensure_future(anext(telegram.replies(), None))
        await telegram.close()
        assert await replies is None

    asyncio.run(main())
    assert bot_api.calls == []


def test_the_bot_token_never_appears_in_logs_errors_or_health(
    bot_api: BotApiServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def keep(exc: BaseException) -> None:
        seen.append(str(exc))
        seen.append(repr(exc))
        seen.append("".join(traceback.format_exception(exc)))

    async def body(telegram: TelegramNotifier, sleeps: Sleeps) -> None:
        await telegram.send(PROMPT)
        bot_api.fail("sendMessage", 401, "Unauthorized")
        bot_api.fail("sendMessage", 400, f"Bad Request: bot{bot_api.token} is odd")
        with pytest.raises(NotifierError, match=r"Unauthorized \(401\)") as refused:
            await telegram.send(PROMPT)
        keep(refused.value)
        with pytest.raises(NotifierError, match="Bad Request") as odd:
            await telegram.send(PROMPT)
        keep(odd.value)
        bot_api.fail("getUpdates", 401, "Unauthorized")
        replies = telegram.replies()
        waiting = asyncio.ensure_future(first_reply(replies))
        await eventually(lambda: bool(sleeps.waited))
        seen.append(str(telegram.health()))
        bot_api.stop()
        with pytest.raises(NotifierError, match="unreachable") as down:
            await telegram.send(PROMPT)
        keep(down.value)
        bot_api.start()
        bot_api.say("/pending")
        await waiting

    use(bot_api, body)
    out = capsys.readouterr()
    logs = "\n".join(r.getMessage() for r in caplog.records)
    captured = "\n".join([*seen, logs, out.out, out.err])
    assert "bot***/sendMessage" in logs  # httpx did log its requests, with the placeholder
    assert "the bot token was refused" in captured
    secret = bot_api.token.split(":")[1]
    assert bot_api.token not in captured
    assert secret not in captured


def test_what_a_reload_carries_over_depends_on_the_bot_and_the_chat(
    bot_api: BotApiServer,
) -> None:
    """A reload changing a timeout carries the offset and the prompts; one to another
    chat of the same bot the offset only (the bot's updates go on; message ids are the
    old chat's); one to another bot (token) nothing."""

    async def main() -> None:
        sleeps = Sleeps()
        old = notifier(bot_api, sleeps)
        await old.send(PROMPT)
        old._offset = 42
        slower, other_chat = (
            notifier(bot_api, sleeps, poll_timeout=5),
            notifier(bot_api, sleeps, chat_id=7),
        )
        other_bot = TelegramNotifier(
            TelegramSettings.model_validate(settings_for(bot_api)),
            TelegramCredentials(bot_token="1:another"),
            sleep=sleeps,
        )
        for new in (slower, other_chat, other_bot):
            new.carry_over(old)
        sent = old.recall("req_1")
        assert sent is not None
        assert (slower.recall("req_1"), slower._offset) == (sent, 42)
        assert (other_chat.recall("req_1"), other_chat._offset) == (None, 42)
        assert (other_bot.recall("req_1"), other_bot._offset) == (None, None)
        for each in (old, slower, other_chat, other_bot):
            await each.close()

    asyncio.run(main())
