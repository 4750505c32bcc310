"""What a ``getUpdates`` update means for core: a Reply, a button press, or nothing.

Only the configured chat *and* user count as the person; anything else is still handed
to core, marked ``known_sender=False``, because only core can audit it. Messages older
than the notifier's start (a backlog from while the daemon was down) are dropped: an old
code would only count as a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airlock.plugin import Reply

__all__ = ["Incoming", "read_update"]

DENY_PREFIX = "deny:"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _User(_Model):
    id: int


class _Chat(_Model):
    id: int


class _Ref(_Model):
    message_id: int
    chat: _Chat | None = None


class _Message(_Model):
    message_id: int
    chat: _Chat
    sender: _User | None = Field(None, alias="from")
    date: int
    text: str | None = None
    reply_to_message: _Ref | None = None


class _Callback(_Model):
    id: str
    sender: _User = Field(alias="from")
    message: _Ref | None = None
    data: str | None = None


class _Update(_Model):
    update_id: int
    message: _Message | None = None
    callback_query: _Callback | None = None


@dataclass(frozen=True)
class Incoming:
    update_id: int | None
    reply: Reply | None = None
    callback_id: str | None = None
    """A button press to answer with ``answerCallbackQuery`` (stops the spinner)."""


def _sender(user: _User | None, chat: _Chat | None) -> str:
    return f"user {user.id if user else '?'} in chat {chat.id if chat else '?'}"


def read_update(
    raw: Any, *, chat_id: int, user_id: int, not_before: float, now: datetime | None = None
) -> Incoming:
    try:
        update = _Update.model_validate(raw)
    except ValidationError:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        return Incoming(update_id if isinstance(update_id, int) else None)
    received = now or datetime.now(UTC)
    if update.message is not None:
        msg = update.message
        if msg.text is None or msg.date < not_before:
            return Incoming(update.update_id)
        known = msg.chat.id == chat_id and msg.sender is not None and msg.sender.id == user_id
        reply = Reply(
            sender=_sender(msg.sender, msg.chat),
            text=msg.text,
            in_reply_to=str(msg.reply_to_message.message_id) if msg.reply_to_message else None,
            received_at=received,
            known_sender=known,
        )
        return Incoming(update.update_id, reply)
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
