"""What a ``getUpdates`` update means for core: a Reply, a button press, or nothing.

Only the configured chat *and* user count as the person; anything else is still handed
to core, marked ``known_sender=False``, because only core can audit it. Messages older
than the notifier's start (a backlog from while the daemon was down) are dropped: an old
code would only count as a wrong one.

Anyone can write to the bot, so an update is hostile input. The models are strict (a
number where text belongs, a string where a user belongs, is not coerced: the update is
skipped), ids are 64-bit, strings Telegram bounds are bounded here too, and a text
longer than Telegram's own 4,096 characters is not passed on: a stranger's message then
reaches core's audit with its text dropped, the person's is skipped. A skipped update
says why in ``problem`` (field names only, never its content).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airlock.plugin import Reply, problem_fields

__all__ = ["MAX_TEXT", "Incoming", "first_update_id", "read_update"]

DENY_PREFIX = "deny:"
MAX_TEXT = 4096
"""Telegram's limit on a message's text, in UTF-16 units (a count of code points, as
Python's ``len``, is never larger): anything longer did not come as Telegram documents."""

Id = Annotated[int, Field(ge=-(2**63), lt=2**63)]
_FIRST_ID = re.compile(rb'"update_id"\s*:\s*([0-9]{1,19})')


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)


class _User(_Model):
    id: Id


class _Chat(_Model):
    id: Id


class _Ref(_Model):
    message_id: Id
    chat: _Chat | None = None


class _Message(_Model):
    message_id: Id
    chat: _Chat
    sender: _User | None = Field(None, alias="from")
    date: Id
    text: str | None = None
    reply_to_message: _Ref | None = None


class _Callback(_Model):
    id: str = Field(max_length=256)
    sender: _User = Field(alias="from")
    message: _Ref | None = None
    data: str | None = Field(None, max_length=64)  # Telegram's own limit (64 bytes)


class _Update(_Model):
    update_id: Id
    message: _Message | None = None
    callback_query: _Callback | None = None


@dataclass(frozen=True)
class Incoming:
    update_id: int | None
    reply: Reply | None = None
    callback_id: str | None = None
    """A button press to answer with ``answerCallbackQuery`` (stops the spinner)."""
    problem: str = ""
    """Why (part of) the update was not passed on, for the log; never its content."""


def first_update_id(head: bytes) -> int | None:
    """The id of the first update in the start of a getUpdates answer, or None.

    Only a key can match: inside a JSON string the quote after ``update_id`` is escaped.
    """
    match = _FIRST_ID.search(head)
    return int(match.group(1)) if match else None


def _malformed(exc: ValidationError) -> str:
    return "malformed: " + ", ".join(problem_fields(exc))


def _sender(user: _User | None, chat: _Chat | None) -> str:
    return f"user {user.id if user else '?'} in chat {chat.id if chat else '?'}"


def read_update(
    raw: Any, *, chat_id: int, user_id: int, not_before: float, now: datetime | None = None
) -> Incoming:
    try:
        update = _Update.model_validate(raw)
    except ValidationError as exc:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        usable = type(update_id) is int and 0 <= update_id < 2**63
        return Incoming(update_id if usable else None, problem=_malformed(exc))
    received = now or datetime.now(UTC)
    if update.message is not None:
        msg = update.message
        if msg.text is None or msg.date < not_before:
            return Incoming(update.update_id)
        known = msg.chat.id == chat_id and msg.sender is not None and msg.sender.id == user_id
        text, problem = msg.text, ""
        if len(text) > MAX_TEXT:
            problem = f"text over {MAX_TEXT} characters"
            if known:
                return Incoming(update.update_id, problem=problem)
            text = ""  # a stranger's: still audited by core, without the text
        reply = Reply(
            sender=_sender(msg.sender, msg.chat),
            text=text,
            in_reply_to=str(msg.reply_to_message.message_id) if msg.reply_to_message else None,
            received_at=received,
            known_sender=known,
        )
        return Incoming(update.update_id, reply, problem=problem)
    if update.callback_query is not None:
        press = update.callback_query
        target = press.message
        if target is None or not (press.data or "").startswith(DENY_PREFIX):
            return Incoming(update.update_id, callback_id=press.id)
        chat = target.chat
        known = press.sender.id == user_id and chat is not None and chat.id == chat_id
        reply = Reply(
            sender=_sender(press.sender, chat),
            text="deny",
            in_reply_to=str(target.message_id),
            received_at=received,
            known_sender=known,
        )
        return Incoming(update.update_id, reply, callback_id=press.id)
    return Incoming(update.update_id)
