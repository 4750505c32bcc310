"""Approvals through Telegram on an in-process runtime (real approvals, audit, TOTP and
notifier; a clock the test moves), against the local Bot API server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import airlock_notify_telegram.plugin as telegram_plugin
from airlock.daemon.runtime import Runtime
from airlock.errors import ConfigError
from tests.notifier_harness.runtime import (
    ME,
    Phone,
    ask,
    audit_events,
    make_runtime,
    run_scenario,
    status_of,
)
from tests.notifier_harness.waiting import eventually
from tests.telegram.bot_api_server import GROUP_CHAT, PERSON, STRANGER, BotApiServer
from tests.telegram.conftest import prompt_id, settings_for

Scenario = Callable[[Runtime, Phone], Awaitable[None]]


def run(tmp_path: Path, bot_api: BotApiServer, scenario: Scenario, **config: Any) -> None:
    runtime, phone = make_runtime(
        tmp_path / "home",
        telegram_plugin,
        "telegram",
        settings_for(bot_api),
        {"bot_token": bot_api.token},
        **config,
    )
    run_scenario(runtime, phone, scenario)


def chat_texts(bot_api: BotApiServer) -> list[str]:
    return [str(m["text"]) for m in bot_api.sent()]


def test_a_reply_with_the_code_approves_and_the_prompt_shows_it(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        mid = await prompt_id(bot_api, created.code)
        bot_api.say(phone.code(), reply_to=mid)
        await eventually(lambda: status_of(runtime, created))
        state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=5)
        assert state.status == "approved"
        assert state.session is not None
        (verified,) = audit_events(runtime, "totp_verified")
        assert (verified["request"], verified["channel"]) == (created.id, "telegram")
        await eventually(lambda: bot_api.messages[mid].get("edited"))
        prompt = bot_api.messages[mid]
        assert prompt["text"].endswith("✅ Approved")
        assert prompt["reply_markup"] is None  # the Deny button is gone
        await eventually(lambda: f"Approved {created.code}." in chat_texts(bot_api))
        notice = next(m for m in bot_api.sent() if m["text"] == f"Approved {created.code}.")
        assert notice["reply_to"] == mid

    run(tmp_path, bot_api, scenario)


def test_a_reply_binds_to_its_own_prompt_among_several(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        first, second = await ask(runtime), await ask(runtime)
        await prompt_id(bot_api, first.code)
        bot_api.say(phone.code(), reply_to=await prompt_id(bot_api, second.code))
        await eventually(lambda: len(runtime.approvals.pending()) == 1)
        assert [p.id for p in runtime.approvals.pending()] == [first.id]
        assert await status_of(runtime, second) == "approved"

    run(tmp_path, bot_api, scenario)


def test_a_bare_code_with_two_requests_pending_asks_which(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        first, second = await ask(runtime), await ask(runtime)
        await prompt_id(bot_api, second.code)
        bot_api.say(phone.code())
        await eventually(lambda: any(t.startswith("Which request?") for t in chat_texts(bot_api)))
        question = next(t for t in chat_texts(bot_api) if t.startswith("Which request?"))
        assert first.code in question
        assert second.code in question
        assert len(runtime.approvals.pending()) == 2

    run(tmp_path, bot_api, scenario)


def test_a_bare_code_approves_the_only_pending_request(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        await prompt_id(bot_api, created.code)
        code = phone.code()
        bot_api.say(f"{code[:3]} {code[3:]}")
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "approved"

    run(tmp_path, bot_api, scenario)


def test_replies_from_another_user_or_chat_are_ignored_and_audited(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        mid = await prompt_id(bot_api, created.code)
        code = phone.code()
        before = len(bot_api.sent())
        bot_api.say(code, reply_to=mid, user=STRANGER, chat=STRANGER)  # their own chat
        bot_api.say(code, reply_to=mid, user=STRANGER, chat=PERSON)  # the person's chat
        bot_api.say(code, reply_to=mid, user=PERSON, chat=GROUP_CHAT)  # a group
        bot_api.press(mid, user=STRANGER)  # the Deny button
        bot_api.say("/pending")  # answered only after everything before it
        await eventually(lambda: any(t.startswith("Pending:") for t in chat_texts(bot_api)))
        ignored = audit_events(runtime, "reply_ignored")
        assert [e["sender"] for e in ignored] == [
            f"user {STRANGER} in chat {STRANGER}",
            f"user {STRANGER} in chat {PERSON}",
            f"user {PERSON} in chat {GROUP_CHAT}",
        ]  # the button press was the same stranger again within a minute: counted, not logged
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert not audit_events(runtime, "approval_failed")
        assert len(bot_api.sent()) == before + 1  # only the person's /pending was answered
        # The code was not consumed: the person can still use it.
        bot_api.say(code, reply_to=mid)
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "approved"

    run(tmp_path, bot_api, scenario)


def test_the_deny_button_denies_and_the_prompt_shows_it(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        mid = await prompt_id(bot_api, created.code)
        bot_api.press(mid)
        await eventually(lambda: bot_api.messages[mid].get("edited"))
        assert await status_of(runtime, created) == "denied"
        prompt = bot_api.messages[mid]
        assert prompt["text"].endswith("⛔ Denied")
        assert prompt["reply_markup"] is None
        (answer,) = bot_api.answered
        assert answer["callback_query_id"] == f"cbq{mid}{PERSON}"
        (denied,) = audit_events(runtime, "access_denied")
        assert denied["channel"] == "telegram"

    run(tmp_path, bot_api, scenario)


def test_deny_in_a_reply_denies(tmp_path: Path, bot_api: BotApiServer) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        bot_api.say("Deny", reply_to=await prompt_id(bot_api, created.code))
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "denied"

    run(tmp_path, bot_api, scenario)


def test_wrong_codes_lock_approvals_and_the_phone_is_told(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        mid = await prompt_id(bot_api, created.code)
        for wrong in ("000000", "111111"):
            bot_api.say(wrong, reply_to=mid)
        await eventually(lambda: any("too many wrong codes" in t for t in chat_texts(bot_api)))
        bot_api.say(phone.code(), reply_to=mid)  # even a right code, while locked
        await eventually(
            lambda: any(
                t.startswith("Not approved: approvals are locked") for t in chat_texts(bot_api)
            )
        )
        assert [p.id for p in runtime.approvals.pending()] == [created.id]

    run(tmp_path, bot_api, scenario, approvals={"max_failures": 2})


def test_pending_and_revoke_from_the_chat(tmp_path: Path, bot_api: BotApiServer) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        waiting = await ask(runtime)
        approved = await ask(runtime)
        bot_api.say(phone.code(), reply_to=await prompt_id(bot_api, approved.code))
        await eventually(lambda: len(runtime.approvals.pending()) == 1)
        state = await runtime.approvals.collect(approved.id, approved.claim, peer=ME, wait=1)
        assert state.session is not None
        bot_api.say("/pending")
        await eventually(lambda: any(t.startswith("Pending:") for t in chat_texts(bot_api)))
        listing = next(t for t in chat_texts(bot_api) if t.startswith("Pending:"))
        assert waiting.code in listing
        assert approved.code not in listing
        bot_api.say("/revoke")
        await eventually(lambda: "Revoked 1 session(s)." in chat_texts(bot_api))
        assert runtime.sessions.list(ME.uid) == [] or all(
            s.revoked_at for s in runtime.sessions.list(ME.uid)
        )
        (revoked,) = audit_events(runtime, "session_revoked")
        assert revoked["session"] == state.session.id

    run(tmp_path, bot_api, scenario)


def test_a_backlog_from_before_the_start_is_not_taken_as_answers(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        mid = await prompt_id(bot_api, created.code)
        bot_api.say(phone.code(), reply_to=mid, age=3600)
        bot_api.say("/pending")
        await eventually(lambda: any(t.startswith("Pending:") for t in chat_texts(bot_api)))
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert not audit_events(runtime, "approval_failed")

    run(tmp_path, bot_api, scenario)


def test_a_missing_chat_id_stops_the_daemon_naming_the_key(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    settings = settings_for(bot_api)
    del settings["chat_id"]
    with pytest.raises(ConfigError, match=r"notifiers\.telegram\.chat_id: Field required") as err:
        make_runtime(tmp_path / "home", telegram_plugin, "telegram", settings)
    assert err.value.hint == "see `airlock telegram setup` or docs/configuration.md"
