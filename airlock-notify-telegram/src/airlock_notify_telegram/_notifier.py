"""The ``telegram`` notifier: prompts from a bot, replies read by long-polling getUpdates.

It only transports (see docs/plugins.md): the person's reply to a prompt becomes a Reply bound to
that prompt's message id, a press of the prompt's Deny button becomes a "deny" reply to
it, and core decides what either means. When core tells the outcome, the prompt is
edited to show it and its button goes away.

Updates are anyone's messages, so what is read is bounded: a getUpdates asks for at most
:data:`UPDATES_PER_POLL` updates and its answer is read streamed up to
:data:`MAX_UPDATES_BYTES`. An answer over that is asked for again one update at a time,
and an update alone over it is skipped by its id (read from the answer's first bytes).
Each update is read on its own (see ``_updates``): a malformed one is logged, confirmed
and skipped, and receiving goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from airlock.plugin import (
    AnswerTooLarge,
    ApiSettings,
    ApiUnreachable,
    Delivery,
    HttpNotifier,
    Notice,
    Notifier,
    NotifierError,
    Prompt,
    Reply,
    get_logger,
)
from airlock_notify_telegram._bot_api import BotApi, BotApiError
from airlock_notify_telegram._render import deny_markup, notice_html, outcome_html, prompt_html
from airlock_notify_telegram._updates import first_update_id, read_update

log = get_logger("airlock.telegram")

__all__ = ["TelegramCredentials", "TelegramNotifier", "TelegramSettings"]

DEFAULT_API_BASE = "https://api.telegram.org"
MAX_SEND_WAIT = 10.0
"""The longest 429 ``retry_after`` a send waits out (core gives a send 15 s in all)."""
SEND_ATTEMPTS = 3
NOT_EDITABLE = ("message is not modified", "message to edit not found", "can't be edited")
UPDATES_PER_POLL = 10
"""getUpdates' ``limit``; more in one answer are left for the next poll."""
MAX_UPDATES_BYTES = 4 << 20
"""The largest getUpdates answer read (4 MiB). Telegram bounds a message's text to 4,096
characters and a caption to 1,024, so an update, even with the message it replies to, is
tens of KiB at most: ten fit many times over."""


class TelegramSettings(ApiSettings):
    """``notifiers.telegram`` in config.yaml; ``airlock telegram setup`` finds the ids."""

    chat_id: int = Field(description="The chat with your bot.")
    user_id: int = Field(description="Your Telegram user id; nobody else is listened to.")
    api_base: str = Field(DEFAULT_API_BASE, description="A self-hosted Bot API server.")
    poll_timeout: int = Field(30, ge=1, le=50, description="Seconds one getUpdates waits.")


class TelegramCredentials(BaseModel):
    """The vault entry ``telegram``. Optional so a daemon starts before setup is done, and
    lenient (nothing to refuse, so no validation error can ever quote a secret)."""

    model_config = ConfigDict(extra="ignore")

    bot_token: SecretStr | None = Field(None, description="Bot token from @BotFather")


@dataclass(frozen=True)
class _SentPrompt:
    message_id: int
    text: str


class TelegramNotifier(HttpNotifier[TelegramSettings, _SentPrompt]):
    name = "telegram"
    title = "Telegram bot"
    Settings = TelegramSettings
    Credentials = TelegramCredentials

    def prepare(self) -> None:
        secret = TelegramCredentials.model_validate(self.credentials).bot_token
        self.problem = "" if secret else "no bot token in the vault: run `airlock telegram setup`"
        self._api: BotApi | None = None
        if secret:
            try:
                self._api = self.opened(
                    BotApi(
                        self.config.api_base, secret.get_secret_value(), transport=self.transport
                    )
                )
            except NotifierError as exc:
                self.problem = exc.message
        self._offset: int | None = None
        self._limit = UPDATES_PER_POLL

    def conversation(self) -> tuple[Any, ...]:
        return (*self._bot(), self.config.chat_id)

    def _bot(self) -> tuple[Any, ...]:
        return (self.config.api_base, self.credentials)

    def carry_over(self, old: Notifier) -> None:
        """Also, from the same bot, where its updates go on from: received again, an
        update would be handled twice (a wrong code counted twice)."""
        super().carry_over(old)
        if isinstance(old, TelegramNotifier) and old._bot() == self._bot():
            self._offset = old._offset

    # -- sending -----------------------------------------------------------------------

    async def send(self, prompt: Prompt) -> Delivery:
        text = prompt_html(prompt)
        message = await self._send_message(text, reply_markup=deny_markup(prompt))
        message_id = _message_id(message)
        self.remember(prompt.request_id, _SentPrompt(message_id, text))
        return Delivery(notifier=self.name, ref=str(message_id))

    async def notify(self, notice: Notice) -> None:
        sent = self.recall(notice.request_id)
        if sent is not None and notice.outcome is not None:
            await self._show_outcome(sent, notice.outcome)
        reply_to = (
            {"message_id": sent.message_id, "allow_sending_without_reply": True} if sent else None
        )
        await self._send_message(notice_html(notice), reply_parameters=reply_to)

    async def _show_outcome(
        self, sent: _SentPrompt, outcome: Literal["approved", "denied"]
    ) -> None:
        """Edit the prompt to show the outcome; without reply_markup the button goes."""
        payload = {
            "chat_id": self.config.chat_id,
            "message_id": sent.message_id,
            "text": outcome_html(sent.text, outcome),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        try:
            await self._call("editMessageText", payload)
        except BotApiError as exc:
            if not any(phrase in exc.message for phrase in NOT_EDITABLE):
                raise

    async def _send_message(self, text: str, **extra: Any) -> Any:
        payload = {
            "chat_id": self.config.chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
            **{key: value for key, value in extra.items() if value is not None},
        }
        result = await self._call("sendMessage", payload)
        self.sent += 1
        return result

    async def _call(self, method: str, payload: dict[str, Any]) -> Any:
        """One Bot API call; a 429 with a short ``retry_after`` is waited out and retried."""
        api = self._require_api()
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await api.call(method, payload)
            except BotApiError as exc:
                wait = exc.retry_after
                if wait is None or wait > MAX_SEND_WAIT or attempt == SEND_ATTEMPTS:
                    raise
                log.info("telegram_rate_limited", method=method, retry_after=wait)
                await self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _require_api(self) -> BotApi:
        if self._api is None:
            raise NotifierError(f"telegram: {self.problem}")
        return self._api

    # -- receiving ---------------------------------------------------------------------

    async def replies(self) -> AsyncIterator[Reply]:
        if self._api is None:
            await self.backoff.until_closed(_forever())
            return
        while not self.backoff.closed:
            updates = await self._poll(self._api)
            unconfirmed = 0
            for raw in updates:
                incoming = read_update(
                    raw,
                    chat_id=self.config.chat_id,
                    user_id=self.config.user_id,
                    not_before=self.not_before,
                )
                if incoming.problem:
                    log.warning(
                        "telegram_update_skipped",
                        update_id=incoming.update_id,
                        why=incoming.problem,
                        passed_on=incoming.reply is not None,
                    )
                if incoming.callback_id is not None:
                    await self._answer_button(incoming.callback_id, incoming.reply)
                # Past it only now, as it is handed on: a notifier that takes over from
                # this one (a reload) goes on from here, and receives again an update
                # this one stopped at before handing it on.
                if incoming.update_id is not None:
                    self._offset = max(self._offset or 0, incoming.update_id + 1)
                else:
                    unconfirmed += 1
                if incoming.reply is not None:
                    yield incoming.reply
            if unconfirmed:
                # Not Telegram's answers (they all carry an update_id): they would come
                # back at once on the next poll, so wait as after an error.
                await self.backoff.failed(f"{unconfirmed} update(s) without an update_id")

    async def _poll(self, api: BotApi) -> list[Any]:
        """One long poll; on failure, the back-off wait and an empty batch."""
        payload: dict[str, Any] = {
            "timeout": self.config.poll_timeout,
            "allowed_updates": ["message", "callback_query"],
            "limit": self._limit,
        }
        if self._offset is not None:
            payload["offset"] = self._offset
        try:
            # The read timeout must outlast the server's own wait.
            result = await self.backoff.until_closed(
                api.call(
                    "getUpdates",
                    payload,
                    read_timeout=self.config.poll_timeout + 10,
                    max_bytes=MAX_UPDATES_BYTES,
                )
            )
        except AnswerTooLarge as exc:
            await self._too_large(exc)
            return []
        except BotApiError as exc:
            await self.backoff.failed(_poll_problem(exc), at_least=exc.retry_after or 0.0)
            return []
        except ApiUnreachable as exc:
            await self.backoff.failed(f"unreachable: {exc.kind}")
            return []
        if result is None:
            return []
        self.backoff.succeeded()
        limit, self._limit = self._limit, UPDATES_PER_POLL
        return result[:limit] if isinstance(result, list) else []

    async def _too_large(self, exc: AnswerTooLarge) -> None:
        """An answer over the cap: ask again for one update; one alone over it is skipped
        (confirmed by its id, nothing of it read), with the back-off's wait."""
        if self._limit > 1:
            log.warning("telegram_updates_too_large", max_bytes=exc.limit, next_limit=1)
            self._limit = 1
            return
        update_id = first_update_id(exc.head)
        if update_id is None or update_id + 1 <= (self._offset or 0):
            await self.backoff.failed(f"getUpdates answered over {exc.limit >> 20} MiB")
            return
        log.warning("telegram_update_skipped", update_id=update_id, why=exc.kind)
        self._offset = update_id + 1
        await self.backoff.failed(f"skipped update {update_id}: {exc.kind}")

    async def _answer_button(self, callback_id: str, reply: Reply | None) -> None:
        """Stop the button's spinner; the edited prompt will show the outcome."""
        text = "Sent to Airlock." if reply is not None and reply.known_sender else ""
        try:
            await self._call(
                "answerCallbackQuery", {"callback_query_id": callback_id, "text": text}
            )
        except NotifierError as exc:
            log.warning("telegram_answer_failed", error=type(exc).__name__)


def _poll_problem(exc: BotApiError) -> str:
    if exc.error_code == 409:
        return "conflict: another program polls this bot, or a webhook is set"
    if exc.error_code in (401, 404):
        return "the bot token was refused: run `airlock telegram setup`"
    if exc.error_code == 429:
        return "rate limited by Telegram"
    return f"Telegram error {exc.error_code}"


def _message_id(message: Any) -> int:
    if isinstance(message, dict) and isinstance(message.get("message_id"), int):
        return int(message["message_id"])
    raise NotifierError("telegram: sendMessage answered without a message_id")


async def _forever() -> None:
    await asyncio.Event().wait()
