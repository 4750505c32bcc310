"""End to end through a real daemon process: an agent asks over the socket, the prompt
goes to the local Bot API server, the "person" answers there, and the agent's long-poll
gets the outcome. After every test, the canary bot token must appear in nothing the
daemon wrote (its log, the audit trail) nor in any command's output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notifier_harness.daemon import NotifierDaemon, collect, request
from tests.notifier_harness.waiting import eventually
from tests.telegram.bot_api_server import STRANGER, BotApiServer
from tests.telegram.conftest import prompt_id, settings_for
from tests.telegram.test_prompt import HOSTILE

Start = Callable[..., NotifierDaemon]


@pytest.fixture
def start_daemon(tmp_path: Path, bot_api: BotApiServer) -> Iterator[Start]:
    started: list[NotifierDaemon] = []
    outputs: list[str] = []

    def start(**extra: Any) -> NotifierDaemon:
        daemon = NotifierDaemon(
            tmp_path / "home",
            "telegram",
            settings_for(bot_api),
            {"bot_token": bot_api.token},
            extra,
        )
        started.append(daemon.start())
        return daemon

    def cli(daemon: NotifierDaemon, *args: str) -> Any:
        result = daemon.cli(*args)
        outputs.extend([result.stdout, result.stderr])
        return result

    start.cli = cli  # type: ignore[attr-defined]
    yield start
    for daemon in started:
        daemon.stop()
        written = [daemon.output(), (daemon.paths.audit_dir / "audit.jsonl").read_text()]
        for text in written + outputs:
            assert bot_api.token not in text
            assert bot_api.token.split(":")[1] not in text


def status(start: Start, daemon: NotifierDaemon) -> dict[str, Any]:
    result = start.cli(daemon, "status", "--json")  # type: ignore[attr-defined]
    assert result.returncode == 0, result.stderr
    notifiers = json.loads(result.stdout)["daemon"]["notifiers"]
    return {n["name"]: n for n in notifiers}


def test_the_agent_gets_its_session_when_the_person_replies_with_the_code(
    start_daemon: Start, bot_api: BotApiServer
) -> None:
    daemon = start_daemon()

    async def main() -> None:
        async with daemon.client() as agent:
            created = await request(agent)
            mid = await prompt_id(bot_api, created["code"])
            bot_api.say(daemon.phone.code(), reply_to=mid)
            state = await collect(agent, created)
            assert state["status"] == "approved"
            token = state["session"]["token"]
            done = await agent.post(
                "/v1/ops/echo/echo",
                json={"params": {"text": "hi"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert done.json()["result"] == {"text": "hi"}

    asyncio.run(main())
    (verified,) = daemon.audit("totp_verified")
    assert verified["channel"] == "telegram"


def test_a_stranger_cannot_approve_and_the_deny_button_denies(
    start_daemon: Start, bot_api: BotApiServer
) -> None:
    daemon = start_daemon()

    async def main() -> None:
        async with daemon.client() as agent:
            created = await request(agent)
            mid = await prompt_id(bot_api, created["code"])
            bot_api.say(daemon.phone.code(), reply_to=mid, user=STRANGER, chat=STRANGER)
            bot_api.say("/pending")  # answered only once the stranger's message was handled
            await eventually(lambda: any("Pending:" in m["text"] for m in bot_api.sent()))
            assert (await collect(agent, created, wait=0))["status"] == "pending"
            bot_api.press(mid)
            assert (await collect(agent, created))["status"] == "denied"
            await eventually(lambda: bot_api.messages[mid].get("edited"))
            assert bot_api.messages[mid]["text"].endswith("⛔ Denied")

    asyncio.run(main())
    (ignored,) = daemon.audit("reply_ignored")
    assert ignored["sender"] == f"user {STRANGER} in chat {STRANGER}"


def test_429_and_409_are_recovered_from(start_daemon: Start, bot_api: BotApiServer) -> None:
    bot_api.fail("getUpdates", 409, "Conflict: terminated by other getUpdates request", times=2)
    bot_api.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    daemon = start_daemon()

    async def main() -> None:
        async with daemon.client() as agent:
            created = await request(agent)
            mid = await prompt_id(bot_api, created["code"])
            bot_api.say(daemon.phone.code(), reply_to=mid)
            assert (await collect(agent, created))["status"] == "approved"

    asyncio.run(main())
    assert len(bot_api.calls_of("sendMessage")) >= 2


def test_lockout_warning_reaches_the_phone(start_daemon: Start, bot_api: BotApiServer) -> None:
    daemon = start_daemon(approvals={"max_failures": 2})

    async def main() -> None:
        async with daemon.client() as agent:
            created = await request(agent)
            mid = await prompt_id(bot_api, created["code"])
            bot_api.say("000000", reply_to=mid)
            bot_api.say("000001", reply_to=mid)
            for _ in range(250):
                if any("too many wrong codes" in m["text"] for m in bot_api.sent()):
                    return
                await asyncio.sleep(0.02)
            raise AssertionError([m["text"] for m in bot_api.sent()])

    asyncio.run(main())
    assert daemon.audit("approvals_locked")


def test_telegram_going_down_and_coming_back(start_daemon: Start, bot_api: BotApiServer) -> None:
    daemon = start_daemon()

    async def main() -> None:
        bot_api.stop()
        async with daemon.client() as agent:
            created = await request(agent)

            async def unreachable() -> bool:
                health = (await agent.get("/v1/status")).json()["notifiers"]
                return any("ConnectError" in h["detail"] for h in health)

            await eventually(unreachable, within=10)
            shown = status(start_daemon, daemon)  # what `airlock status` says
            assert shown["telegram"]["detail"].startswith("unreachable: ConnectError (retrying")
            assert not shown["telegram"]["ok"]
            assert shown["console"]["ok"]
            # Approvals keep working on the terminal meanwhile.
            code = daemon.phone.code()
            done = start_daemon.cli(daemon, "approve", created["code"], "--totp", code)  # type: ignore[attr-defined]
            assert done.returncode == 0, done.stderr
            assert (await collect(agent, created))["status"] == "approved"
            bot_api.start()
            again = await request(agent)
            mid = await prompt_id(bot_api, again["code"])
            bot_api.say(daemon.phone.code(), reply_to=mid)
            assert (await collect(agent, again))["status"] == "approved"
            assert status(start_daemon, daemon)["telegram"] == {
                "name": "telegram",
                "ok": True,
                "detail": "",
            }

    asyncio.run(main())


def test_hostile_reasons_from_an_agent_reach_the_chat_quoted_and_escaped(
    start_daemon: Start, bot_api: BotApiServer
) -> None:
    daemon = start_daemon()

    async def main() -> list[tuple[str, dict[str, Any]]]:
        sent = []
        async with daemon.client() as agent:
            too_long = {"services": ["echo"], "reason": HOSTILE["long"]}
            refused = await agent.post("/v1/requests", json=too_long)
            assert refused.status_code == 400  # the API takes 1,000 characters at most
            for reason in [*HOSTILE.values(), "B" * 1000]:
                if len(reason) > 1000:
                    continue
                created = await request(agent, reason=reason)
                sent.append((reason, bot_api.messages[await prompt_id(bot_api, created["code"])]))
        return sent

    for reason, message in asyncio.run(main()):
        wire, visible = message["html"], message["text"]
        assert wire.count("<blockquote>") == wire.count("</blockquote>") == 1
        lines = visible.splitlines()
        quote = lines.index("Reason given by the agent (untrusted):") + 1
        own = lines[:quote] + lines[quote + 1 :]
        assert not any("Approved" in line or "ZZZZ" in line for line in own), reason
        assert not any(ch in visible for ch in "\u202e\u2066\u200b")
        assert len(lines[quote]) <= 300
