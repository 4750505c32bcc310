"""Anyone can write to the bot: what getUpdates brings is hostile input. On an in-process
runtime (real notifier, approvals and audit) against the local Bot API server: over-long
texts, updates of the wrong shape and an answer that never ends are bounded or skipped,
and each time the person's next reply still approves (receiving went on)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import airlock_notify_telegram.plugin as telegram_plugin
from airlock.daemon.runtime import Runtime
from airlock.framework.notifiers import Reply
from airlock.security.replies import ReplyHandler
from airlock_notify_telegram._notifier import MAX_UPDATES_BYTES
from airlock_notify_telegram._updates import MAX_TEXT
from tests.notifier_harness.runtime import Phone, ask, audit_events, make_runtime, run_scenario
from tests.notifier_harness.waiting import eventually
from tests.telegram.bot_api_server import ENDLESS_LIMIT, PERSON, STRANGER, BotApiServer
from tests.telegram.conftest import prompt_id, settings_for

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
    tmp_path: Path, bot_api: BotApiServer, scenario: Callable[[Runtime, Phone], Awaitable[None]]
) -> None:
    runtime, phone = make_runtime(
        tmp_path / "home",
        telegram_plugin,
        "telegram",
        settings_for(bot_api),
        {"bot_token": bot_api.token},
    )
    run_scenario(runtime, phone, scenario)


async def approve_with_a_good_reply(runtime: Runtime, phone: Phone, bot_api: BotApiServer) -> None:
    created = await ask(runtime)
    bot_api.say(phone.code(), reply_to=await prompt_id(bot_api, created.code))
    await eventually(lambda: not runtime.approvals.pending(), within=20)
    (verified,) = audit_events(runtime, "totp_verified")
    assert verified["request"] == created.id


def test_megabyte_texts_never_reach_core_and_a_strangers_is_still_audited(
    tmp_path: Path, bot_api: BotApiServer, handed: list[Reply]
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        bot_api.say("9" * MIB, user=STRANGER, chat=STRANGER)
        bot_api.say("1" * MIB)  # the person's own, over Telegram's limit: dropped
        await eventually(lambda: audit_events(runtime, "reply_ignored"), within=20)
        await approve_with_a_good_reply(runtime, phone, bot_api)
        (ignored,) = audit_events(runtime, "reply_ignored")
        assert ignored["sender"] == f"user {STRANGER} in chat {STRANGER}"
        assert "9" * 64 not in str(ignored)

    run(tmp_path, bot_api, scenario)
    assert max(len(r.text) for r in handed) <= MAX_TEXT
    stranger = [r for r in handed if not r.known_sender]
    assert [r.text for r in stranger] == [""]
    assert not [r for r in handed if r.known_sender and r.text.startswith("111")]


def test_updates_of_the_wrong_shape_are_skipped_not_coerced(
    tmp_path: Path, bot_api: BotApiServer, handed: list[Reply]
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        mid = await prompt_id(bot_api, created.code)
        now = int(bot_api.messages[mid]["date"])
        chat = {"id": PERSON, "type": "private"}
        person = {"id": PERSON, "is_bot": False, "first_name": "P"}
        good = {"message_id": 77, "chat": chat, "from": person, "date": now}
        reply_to = {"message_id": mid, "chat": chat}
        bot_api.push_raw({"message": {**good, "text": 123456}})  # text as a number
        bot_api.push_raw({"message": {**good, "from": "5001", "text": "/pending"}})
        garbage: object = {"id": PERSON}
        for depth in range(200):
            garbage = [garbage, {"chat": garbage}] if depth < 8 else [garbage]
        bot_api.push_raw({"message": {**good, "chat": garbage, "text": "/pending"}})
        bot_api.push_raw({"message": {**good, "from": {"id": 10**30}, "text": "/pending"}})
        bot_api.push_raw({"callback_query": {"id": "1", "from": "me", "data": "deny:x"}})
        # The person's own code, but with the id as a string: strict, so not taken.
        bot_api.push_raw(
            {
                "message": {
                    **good,
                    "from": {"id": str(PERSON)},
                    "text": phone.code(),
                    "reply_to_message": reply_to,
                }
            }
        )
        bot_api.say("/help")
        await eventually(lambda: any(r.text == "/help" for r in handed), within=20)
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert not audit_events(runtime, "totp_verified")
        bot_api.say(phone.code(), reply_to=mid)
        await eventually(lambda: not runtime.approvals.pending(), within=20)
        assert audit_events(runtime, "totp_verified")

    run(tmp_path, bot_api, scenario)
    assert [r.text for r in handed][:1] == ["/help"]  # nothing malformed went through
    assert bot_api.pending_updates() == 0  # every update confirmed


def test_a_getupdates_answer_that_never_ends_is_cut_at_the_cap_and_its_update_skipped(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        bot_api.say("/pending")  # a first update, so the offset is known
        await eventually(lambda: any(m["text"] == "Nothing is pending." for m in bot_api.sent()))
        bot_api.push_endless()
        await approve_with_a_good_reply(runtime, phone, bot_api)

    run(tmp_path, bot_api, scenario)
    # Read once with the usual limit, then alone; each time stopped near the cap (what the
    # socket buffers hold besides), never read to the server's own end.
    assert len(bot_api.endless_written) == 2
    assert all(w < ENDLESS_LIMIT // 2 for w in bot_api.endless_written)
    assert MAX_UPDATES_BYTES < ENDLESS_LIMIT // 4
    limits = [c.get("limit") for c in bot_api.calls_of("getUpdates")]
    assert 1 in limits
    assert limits[-1] == 10
