"""``airlock telegram setup`` as a person runs it (stdin not a terminal: the token, then
the TOTP code, one line each), against a real daemon and the local Bot API server."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airlock.testing import dumpable_after
from airlock_notify_telegram._setup import TEST_MESSAGE
from tests.notifier_harness.daemon import NotifierDaemon, collect, request
from tests.telegram.bot_api_server import PERSON, STRANGER, BotApiServer


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[NotifierDaemon]:
    running = NotifierDaemon(tmp_path / "home", "telegram", None).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotifierDaemon]:
    """For the tests that leave the config as it was: one daemon between them."""
    running = NotifierDaemon(tmp_path_factory.mktemp("shared"), "telegram", None).start()
    yield running
    running.stop()


def setup(
    daemon: NotifierDaemon, bot_api: BotApiServer, *args: str, token: str = ""
) -> subprocess.CompletedProcess[str]:
    stdin = f"{token or bot_api.token}\n{daemon.phone.code()}\n"
    result = daemon.cli(
        "telegram", "setup", "--api-base", bot_api.url, "--wait", "5", *args, stdin=stdin
    )
    assert bot_api.token not in result.stdout + result.stderr
    return result


def test_setup_finds_the_person_stores_the_token_and_writes_the_config(
    daemon: NotifierDaemon, bot_api: BotApiServer
) -> None:
    bot_api.say("/start")
    result = setup(daemon, bot_api, "--write-config")
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert f"found you: 'P' (@u{PERSON}), user id {PERSON}, chat id {PERSON}" in output
    assert "the token works: @airlock_test_bot" in output
    (greeting,) = bot_api.sent()
    assert (greeting["chat"]["id"], greeting["text"]) == (PERSON, TEST_MESSAGE)
    assert daemon.vault.get("telegram") == {"bot_token": bot_api.token}
    config = yaml.safe_load(daemon.paths.config_file.read_text())
    assert config["notifiers"]["telegram"] == {
        "chat_id": PERSON,
        "user_id": PERSON,
        "api_base": bot_api.url,
    }
    assert config["approvals"]["notifiers"] == ["console", "telegram"]
    assert config["services"] == {"echo": {"connector": "echo"}}  # the rest is kept
    assert daemon.paths.config_file.with_name("config.yaml.bak").exists()
    assert bot_api.token not in daemon.paths.config_file.read_text()
    assert bot_api.pending_updates() == 0  # the /start was consumed, not left for the daemon

    # After a restart the daemon prompts on Telegram, and a reply approves.
    daemon.stop()
    daemon.start()

    async def main() -> None:
        async with daemon.client() as agent:
            created = await request(agent)
            for _ in range(250):
                prompts = [m for m in bot_api.sent() if created["code"] in m["text"]]
                if prompts:
                    break
                await asyncio.sleep(0.02)
            bot_api.say(daemon.phone.code(), reply_to=prompts[0]["message_id"])
            assert (await collect(agent, created))["status"] == "approved"

    asyncio.run(main())
    assert bot_api.token not in daemon.output()


def test_without_write_config_it_prints_the_yaml_to_paste(
    shared_daemon: NotifierDaemon, bot_api: BotApiServer
) -> None:
    before = shared_daemon.paths.config_file.read_text()
    bot_api.say("/start")
    result = setup(shared_daemon, bot_api)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    assert "notifiers:\n  telegram:\n    chat_id: 5001\n    user_id: 5001\n" in output
    assert "--write-config" in output
    assert shared_daemon.paths.config_file.read_text() == before
    assert shared_daemon.vault.get("telegram") == {"bot_token": bot_api.token}


def test_a_stranger_named_like_your_username_is_shown_as_a_name_without_one(
    shared_daemon: NotifierDaemon, bot_api: BotApiServer
) -> None:
    """A /start from someone without a username, whose first name is "@" + yours: the
    line asking "is that you?" must not show it as your username."""
    bot_api.push_raw(
        {
            "message": {
                "message_id": 1,
                "from": {"id": STRANGER, "is_bot": False, "first_name": f"@u{PERSON}"},
                "chat": {"id": STRANGER, "type": "private"},
                "date": int(time.time()),
                "text": "/start",
            }
        }
    )
    result = setup(shared_daemon, bot_api)
    assert f"found you: '@u{PERSON}' (no username), user id {STRANGER}" in result.stdout
    assert f"found you: @u{PERSON}" not in result.stdout


def test_a_malformed_token_is_refused_without_echoing_it(
    shared_daemon: NotifierDaemon, bot_api: BotApiServer
) -> None:
    result = setup(shared_daemon, bot_api, token="not-a-token-SECRETPART")
    assert result.returncode == 2
    assert "not a bot token" in result.stderr
    assert "SECRETPART" not in result.stdout + result.stderr
    assert bot_api.calls == []


def test_no_start_in_time_says_what_to_do(
    shared_daemon: NotifierDaemon, bot_api: BotApiServer
) -> None:
    result = shared_daemon.cli(
        "telegram", "setup", "--api-base", bot_api.url, "--wait", "1",
        stdin=f"{bot_api.token}\n",
    )  # fmt: skip
    assert result.returncode == 4
    assert "no /start arrived within 1s" in result.stderr
    assert "send /start to your bot" in result.stderr


def test_the_token_is_read_into_a_process_its_own_user_cannot_read() -> None:
    """The token stays in memory while setup waits minutes for the person's /start: an
    agent running as the person must not read it out (ptrace, /proc/PID/mem)."""
    probe = "from airlock_notify_telegram._setup import read_token\nread_token()"
    assert not dumpable_after(probe, stdin="123456789:AAE" + "x" * 32 + "\n")
