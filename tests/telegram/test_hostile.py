"""Anyone can write to the bot: what getUpdates brings is hostile input. On an in-process
runtime (real notifier, approvals and audit) against the local Bot API server: over-long
texts, updates of the wrong shape and an answer that never ends are bounded or skipped,
and each time the person's next reply still approves (receiving went on)."""

from __future__ import annotations

from pathlib import Path

from airlock.daemon.runtime import Runtime
from airlock.framework.notifiers import Reply
from airlock_notify_telegram._notifier import MAX_UPDATES_BYTES
from airlock_notify_telegram._updates import MAX_TEXT
from tests.notifier_harness.runtime import Phone, ask
from tests.notifier_harness.scenarios import (
    HostileInputScenarios,
    approve_with_a_good_reply,
    play,
    still_pending_then_a_good_reply_approves,
)
from tests.notifier_harness.waiting import eventually
from tests.telegram.bot_api_server import ENDLESS_LIMIT, PERSON
from tests.telegram.conftest import TelegramDouble

MIB = 1 << 20


class TestTelegramHostileInput(HostileInputScenarios):
    max_text = MAX_TEXT
    long_text = MIB  # over Telegram's own limit too

    def test_updates_of_the_wrong_shape_are_skipped_not_coerced(
        self, tmp_path: Path, messenger: TelegramDouble, handed: list[Reply]
    ) -> None:
        bot_api = messenger.server

        async def scenario(runtime: Runtime, phone: Phone) -> None:
            created = await ask(runtime)
            mid = await messenger.prompt(created.code)
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
            await still_pending_then_a_good_reply_approves(
                runtime, phone, messenger, handed, created
            )

        play(tmp_path, messenger, scenario)
        assert [r.text for r in handed][:1] == ["/help"]  # nothing malformed went through
        assert bot_api.pending_updates() == 0  # every update confirmed

    def test_a_getupdates_answer_that_never_ends_is_cut_at_the_cap_and_its_update_skipped(
        self, tmp_path: Path, messenger: TelegramDouble
    ) -> None:
        bot_api = messenger.server

        async def scenario(runtime: Runtime, phone: Phone) -> None:
            messenger.say("/pending")  # a first update, so the offset is known
            await eventually(lambda: "Nothing is pending." in messenger.texts())
            bot_api.push_endless()
            await approve_with_a_good_reply(runtime, phone, messenger)

        play(tmp_path, messenger, scenario)
        # Read once with the usual limit, then alone; each time stopped near the cap (what
        # the socket buffers hold besides), never read to the server's own end.
        assert len(bot_api.endless_written) == 2
        assert all(w < ENDLESS_LIMIT // 2 for w in bot_api.endless_written)
        assert MAX_UPDATES_BYTES < ENDLESS_LIMIT // 4
        limits = [c.get("limit") for c in bot_api.calls_of("getUpdates")]
        assert 1 in limits
        assert limits[-1] == 10
