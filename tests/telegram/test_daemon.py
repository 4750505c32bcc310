"""End to end through a real daemon process: an agent asks over the socket, the prompt
goes to the local Bot API server, the "person" answers there, and the agent's long-poll
gets the outcome. After each daemon, the canary bot token must appear in nothing it
wrote (its log, the audit trail) nor in any command's output.

Tests that leave the daemon as they found it share one (a daemon start costs a second);
the lockout and the outage get their own."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.notifier_harness.daemon import NotifierDaemon, collect, request
from tests.notifier_harness.waiting import eventually
from tests.telegram.bot_api_server import STRANGER, BotApiServer
from tests.telegram.conftest import canary_token, prompt_id, settings_for
from tests.telegram.test_prompt import HOSTILE


@dataclass
class Running:
    """A daemon with telegram pointed at *bot_api*, and every command output it caused."""

    daemon: NotifierDaemon
    bot_api: BotApiServer
    outputs: list[str] = field(default_factory=list)

    def cli(self, *args: str, stdin: str = "") -> Any:
        result = self.daemon.cli(*args, stdin=stdin)
        self.outputs += [result.stdout, result.stderr]
        return result

    def status(self) -> dict[str, Any]:
        """Each notifier's health as ``airlock status --json`` shows it."""
        result = self.cli("status", "--json")
        assert result.returncode == 0, result.stderr
        return {n["name"]: n for n in json.loads(result.stdout)["daemon"]["notifiers"]}

    def stop_and_check_for_the_token(self) -> None:
        self.daemon.stop()
        written = [self.daemon.output(), self.daemon.audit_text()]
        for text in written + self.outputs:
            assert self.bot_api.token not in text
            assert self.bot_api.token.split(":")[1] not in text


def start(home: Path, bot_api: BotApiServer, **extra: Any) -> Running:
    credentials = {"bot_token": bot_api.token}
    daemon = NotifierDaemon(home, "telegram", settings_for(bot_api), credentials, extra)
    return Running(daemon.start(), bot_api)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    bot_api = BotApiServer(canary_token())
    running = start(tmp_path_factory.mktemp("shared"), bot_api)
    yield running
    running.stop_and_check_for_the_token()
    bot_api.close()


@pytest.fixture
def own(tmp_path: Path, bot_api: BotApiServer) -> Iterator[Any]:
    started: list[Running] = []

    def make(**extra: Any) -> Running:
        started.append(start(tmp_path / "home", bot_api, **extra))
        return started[-1]

    yield make
    for running in started:
        running.stop_and_check_for_the_token()


async def approve_by_reply(running: Running, agent: Any) -> dict[str, Any]:
    """An agent's request, approved by the person replying to its prompt with a code."""
    created = await request(agent)
    message_id = await prompt_id(running.bot_api, created["code"])
    running.bot_api.say(running.daemon.phone.code(), reply_to=message_id)
    state: dict[str, Any] = await collect(agent, created)
    assert state["status"] == "approved"
    return state


def test_the_agent_gets_its_session_when_the_person_replies_with_the_code(
    shared: Running,
) -> None:
    async def main() -> None:
        async with shared.daemon.client() as agent:
            state = await approve_by_reply(shared, agent)
            done = await agent.post(
                "/v1/ops/echo/echo",
                json={"params": {"text": "hi"}},
                headers={"Authorization": f"Bearer {state['session']['token']}"},
            )
            assert done.json()["result"] == {"text": "hi"}

    asyncio.run(main())
    assert {e["channel"] for e in shared.daemon.audit("totp_verified")} == {"telegram"}


def test_a_stranger_cannot_approve_and_the_deny_button_denies(shared: Running) -> None:
    bot_api = shared.bot_api

    async def main() -> None:
        async with shared.daemon.client() as agent:
            created = await request(agent)
            mid = await prompt_id(bot_api, created["code"])
            bot_api.say("123456", reply_to=mid, user=STRANGER, chat=STRANGER)
            bot_api.say("/pending")  # answered only once the stranger's message was handled
            await eventually(lambda: any(created["code"] in t for t in pending_answers()))
            assert (await collect(agent, created, wait=0))["status"] == "pending"
            bot_api.press(mid)
            assert (await collect(agent, created))["status"] == "denied"
            await eventually(lambda: bot_api.messages[mid].get("edited"))
            assert bot_api.messages[mid]["text"].endswith("⛔ Denied")

    def pending_answers() -> list[str]:
        return [m["text"] for m in bot_api.sent() if m["text"].startswith("Pending:")]

    asyncio.run(main())
    ignored = shared.daemon.audit("reply_ignored")
    assert [e["sender"] for e in ignored] == [f"user {STRANGER} in chat {STRANGER}"]


def test_429_and_409_are_recovered_from(shared: Running) -> None:
    bot_api = shared.bot_api
    bot_api.fail("getUpdates", 409, "Conflict: terminated by other getUpdates request", times=2)
    bot_api.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    sends = len(bot_api.calls_of("sendMessage"))

    async def main() -> None:
        async with shared.daemon.client() as agent:
            await approve_by_reply(shared, agent)

    asyncio.run(main())
    assert len(bot_api.calls_of("sendMessage")) >= sends + 2  # the 429, then the prompt


def test_hostile_reasons_from_an_agent_reach_the_chat_quoted_and_escaped(
    shared: Running,
) -> None:
    async def main() -> list[dict[str, Any]]:
        sent = []
        async with shared.daemon.client() as agent:
            too_long = {"services": ["echo"], "reason": HOSTILE["long"]}
            refused = await agent.post("/v1/requests", json=too_long)
            assert refused.status_code == 400  # the API takes 1,000 characters at most
            for reason in [*HOSTILE.values(), "B" * 1000]:
                if len(reason) <= 1000:
                    created = await request(agent, reason=reason)
                    message_id = await prompt_id(shared.bot_api, created["code"])
                    sent.append(shared.bot_api.messages[message_id])
        return sent

    for message in asyncio.run(main()):
        wire, visible = message["html"], message["text"]
        assert wire.count("<blockquote>") == wire.count("</blockquote>") == 1
        lines = visible.splitlines()
        quote = lines.index("Reason given by the agent (untrusted):") + 1
        own = lines[:quote] + lines[quote + 1 :]
        assert not any("Approved" in line or "ZZZZ" in line for line in own), visible
        assert not any(ch in visible for ch in "\u202e\u2066\u200b")
        assert len(lines[quote]) <= 300


def test_lockout_warning_reaches_the_phone(own: Any) -> None:
    running: Running = own(approvals={"max_failures": 2})
    bot_api = running.bot_api

    async def main() -> None:
        async with running.daemon.client() as agent:
            created = await request(agent)
            mid = await prompt_id(bot_api, created["code"])
            bot_api.say("000000", reply_to=mid)
            bot_api.say("000001", reply_to=mid)
            await eventually(lambda: any("too many wrong" in m["text"] for m in bot_api.sent()))

    asyncio.run(main())
    assert running.daemon.audit("approvals_locked")


def test_telegram_going_down_and_coming_back(own: Any) -> None:
    running: Running = own()
    bot_api = running.bot_api

    async def main() -> None:
        bot_api.stop()
        async with running.daemon.client() as agent:

            async def health() -> dict[str, Any]:
                listed = (await agent.get("/v1/status")).json()["notifiers"]
                return {h["name"]: h for h in listed}

            async def unreachable() -> bool:
                return "ConnectError" in (await health())["telegram"]["detail"]

            created = await request(agent)
            await eventually(unreachable, within=10)
            shown = running.status()  # what `airlock status` says
            assert shown["telegram"]["detail"].startswith("unreachable: ConnectError (retrying")
            assert not shown["telegram"]["ok"]
            assert shown["console"]["ok"]
            # Approvals keep working on the terminal meanwhile.
            code = running.daemon.phone.code()
            done = running.cli("approve", created["code"], stdin=code + "\n")
            assert done.returncode == 0, done.stderr
            assert (await collect(agent, created))["status"] == "approved"
            bot_api.start()
            await approve_by_reply(running, agent)
            assert (await health())["telegram"] == {"name": "telegram", "ok": True, "detail": ""}

    asyncio.run(main())


def test_a_bot_token_in_a_passphrase_locked_vault_is_used_only_after_unlock(own: Any) -> None:
    running: Running = own()
    daemon, bot_api = running.daemon, running.bot_api
    passphrase = "correct horse " + secrets.token_hex(8)
    sealed = running.cli("lock", "--set-passphrase", stdin=passphrase + "\n")
    assert sealed.returncode == 0, sealed.stderr
    daemon.stop()
    daemon.start()  # starts locked: the vault, and the bot token in it, stay closed
    pid = daemon.proc.pid if daemon.proc else None
    sends = len(bot_api.calls_of("sendMessage"))

    async def while_locked() -> dict[str, Any]:
        async with daemon.client() as agent:
            created = await request(agent, reason="while locked")
            await eventually(
                lambda: any(
                    e["request"] == created["id"] and e["notifier"] == "telegram"
                    for e in daemon.audit("approval_sent")
                ),
                within=10,
            )
            return created

    locked = asyncio.run(while_locked())
    sent = [e for e in daemon.audit("approval_sent") if e["request"] == locked["id"]]
    assert {e["notifier"]: e["ok"] for e in sent} == {"console": True, "telegram": False}
    assert len(bot_api.calls_of("sendMessage")) == sends  # nothing reached Telegram
    assert "no bot token" in running.status()["telegram"]["detail"]

    opened = running.cli("unlock", stdin=passphrase + "\n")
    assert opened.returncode == 0, opened.stderr
    assert running.status()["telegram"]["ok"] is True

    async def after_unlock() -> None:
        async with daemon.client() as agent:
            await approve_by_reply(running, agent)

    asyncio.run(after_unlock())
    assert daemon.proc is not None
    assert daemon.proc.pid == pid  # no restart
    assert daemon.audit("daemon_unlocked")
