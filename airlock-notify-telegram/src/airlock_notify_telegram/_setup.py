"""``airlock telegram setup``: from a fresh @BotFather token to a working approval chat.

It asks for the bot token (hidden on a terminal, the first stdin line otherwise), checks
it with getMe, waits for the person's /start to learn the chat and user id, sends a test
message, stores the token in the daemon's vault (with a TOTP code), and shows the config
to add, or writes it with ``--write-config``. The token never reaches argv, stdout or
the config file.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from airlock.plugin import (
    ApprovalTimedOut,
    InvalidInput,
    NotEnrolled,
    NotifierError,
    refuse_ptrace,
)

if TYPE_CHECKING:
    from airlock.plugin import CliState
    from airlock_notify_telegram._bot_api import BotApi

TEST_MESSAGE = (
    "Airlock is connected. Approval prompts will arrive in this chat: reply to a prompt "
    "with your 6-digit code to approve it, or tap Deny. /pending lists waiting requests."
)


@dataclass(frozen=True)
class Person:
    chat_id: int
    user_id: int
    name: str


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Telegram: approve requests from a bot chat.", no_args_is_help=True)
    app.add_typer(group, name="telegram")

    @group.command("setup")
    def setup(
        ctx: typer.Context,
        api_base: Annotated[
            str | None, typer.Option("--api-base", help="A self-hosted Bot API server.")
        ] = None,
        wait: Annotated[int, typer.Option("--wait", help="Seconds to wait for /start.")] = 300,
        write_config: Annotated[
            bool, typer.Option("--write-config", help="Write the settings into config.yaml.")
        ] = False,
    ) -> None:
        """Connect a Telegram bot: token, your /start, a test message, then the config.

        From a script: the token on stdin's first line, your TOTP code on the next.
        """
        run_setup(ctx.obj, api_base=api_base, wait=wait, write_config=write_config)


def run_setup(state: CliState, *, api_base: str | None, wait: int, write_config: bool) -> None:
    import asyncio

    from airlock.plugin import (
        api_base_setting,
        configured_api_base,
        read_totp,
        report_settings,
        store_secret,
        with_client,
    )
    from airlock_notify_telegram._notifier import DEFAULT_API_BASE

    status = with_client(state, lambda client: client.status())  # fails early, with a hint
    if not status.totp_enrolled:
        raise NotEnrolled("TOTP not enrolled: run `airlock totp setup` first")
    base = configured_api_base(state, "telegram", api_base, DEFAULT_API_BASE)
    token = read_token()
    person = asyncio.run(_meet(base, token, wait))
    typer.echo(f"found you: {person.name}, user id {person.user_id}, chat id {person.chat_id}")
    if sys.stdin.isatty() and not typer.confirm("is that you?", default=True):
        raise InvalidInput("setup stopped: that /start came from someone else", field="chat")
    store_secret(state, "telegram", {"bot_token": token}, read_totp())
    typer.echo("saved the bot token in the vault (entry telegram, field bot_token)")
    settings: dict[str, Any] = {
        "chat_id": person.chat_id,
        "user_id": person.user_id,
        **api_base_setting(base, DEFAULT_API_BASE),
    }
    report_settings(state, "telegram", settings, write=write_config)


def read_token() -> str:
    import getpass

    from airlock_notify_telegram._bot_api import valid_token

    refuse_ptrace()  # held while setup waits for /start: no process of this user reads it
    if sys.stdin.isatty():
        typer.echo("Create a bot with @BotFather in Telegram (/newbot) and paste its token.")
        token = getpass.getpass("Bot token (hidden): ").strip()
    else:
        token = sys.stdin.readline().strip()
    if not valid_token(token):
        raise InvalidInput(
            "that is not a bot token (they look like 123456789:AAE...)", field="bot_token"
        )
    return token


async def _meet(api_base: str, token: str, wait: int) -> Person:
    """Check the token, wait for the person's /start, greet them with a test message."""
    from airlock_notify_telegram._bot_api import BotApi

    api = BotApi(api_base, token)
    try:
        me = await api.call("getMe")
        bot = f"@{me.get('username')}" if isinstance(me, dict) else "your bot"
        typer.echo(f"the token works: {bot}. In Telegram, open {bot} and send it /start")
        typer.echo(f"waiting up to {wait}s for your /start...")
        person = await _wait_for_start(api, wait)
        await api.call("sendMessage", {"chat_id": person.chat_id, "text": TEST_MESSAGE})
        typer.echo("sent you a test message")
        return person
    finally:
        await api.aclose()


async def _wait_for_start(api: BotApi, wait: int) -> Person:
    from airlock_notify_telegram._bot_api import BotApiError

    deadline = time.monotonic() + wait
    offset: int | None = None
    while (left := deadline - time.monotonic()) > 0:
        timeout = max(1, min(30, int(left)))
        payload: dict[str, Any] = {"timeout": timeout, "allowed_updates": ["message"]}
        if offset is not None:
            payload["offset"] = offset
        try:
            updates = await api.call("getUpdates", payload, read_timeout=timeout + 10)
        except BotApiError as exc:
            if exc.error_code == 409:
                raise NotifierError(
                    "another program is reading this bot's updates, or a webhook is set",
                    hint="stop the daemon (it may be polling this bot) or deleteWebhook, "
                    "then run setup again",
                ) from None
            raise
        for update in updates or []:
            offset = int(update.get("update_id", 0)) + 1
            person = _person_in(update)
            if person is not None:
                await api.call("getUpdates", {"offset": offset, "timeout": 0})  # consume it
                return person
    raise ApprovalTimedOut(
        f"no /start arrived within {wait}s", hint="send /start to your bot, then run it again"
    )


def _person_in(update: dict[str, Any]) -> Person | None:
    from airlock.plugin import untrusted_line

    message = update.get("message") or {}
    chat, sender = message.get("chat") or {}, message.get("from") or {}
    text = message.get("text") or ""
    if not text.startswith("/start") or chat.get("type") != "private":
        return None
    if not isinstance(chat.get("id"), int) or not isinstance(sender.get("id"), int):
        return None
    # Someone else's text: no terminal escapes, one short line. The first name is
    # anyone's choice ("@" + your username, say), so it is quoted as a name and the
    # username, which Telegram keeps unique, is said apart (or that there is none).
    first = untrusted_line(str(sender.get("first_name") or ""), 64)
    handle = sender.get("username")
    username = f"@{untrusted_line(handle, 40)}" if isinstance(handle, str) else "no username"
    return Person(chat_id=chat["id"], user_id=sender["id"], name=f"{first!r} ({username})")
