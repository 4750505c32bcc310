"""What a received envelope means for core: a Reply, or nothing.

A text message is a reply to the prompt it quotes (``dataMessage.quote.id`` is the
prompt's send timestamp); a 👎 reaction to a prompt (``reaction.targetSentTimestamp``) is
"👎", which core reads as deny. Receipts, typing, sync messages, other reactions and
removed reactions mean nothing. Only direct messages from the configured person count as
theirs; anything else is handed to core marked ``known_sender=False`` for its audit.
Messages from before the notifier started (a queue built up while the daemon was down)
are dropped: an old code would only count as a wrong one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from airlock.plugin import Reply

__all__ = ["THUMBS_DOWN", "read_envelope"]

THUMBS_DOWN = "👎"
_MODIFIERS = {"\ufe0f", *(chr(c) for c in range(0x1F3FB, 0x1F400))}  # skin tones, VS16


class _Model(BaseModel):
    """Fields keep the wire's camelCase names, so the models read like the JSON."""

    model_config = ConfigDict(extra="ignore")


class _Quote(_Model):
    id: int


class _Reaction(_Model):
    emoji: str
    targetSentTimestamp: int
    isRemove: bool = False


class _Data(_Model):
    timestamp: int | None = None
    message: str | None = None
    quote: _Quote | None = None
    reaction: _Reaction | None = None
    groupInfo: dict[str, Any] | None = None


class _Envelope(_Model):
    source: str | None = None
    sourceNumber: str | None = None
    sourceUuid: str | None = None
    timestamp: int
    dataMessage: _Data | None = None


class _Item(_Model):
    envelope: _Envelope


def read_envelope(
    raw: Any, *, recipient: str, recipient_uuid: str | None, not_before: float
) -> Reply | None:
    try:
        envelope = _Item.model_validate(raw).envelope
    except ValidationError:
        return None
    data = envelope.dataMessage
    if data is None or envelope.timestamp / 1000 < not_before:
        return None
    number = envelope.sourceNumber or envelope.source
    is_person = number == recipient or (
        recipient_uuid is not None and envelope.sourceUuid == recipient_uuid
    )
    sender = number or envelope.sourceUuid or "unknown"
    if data.groupInfo is not None:
        sender += " in a group"
    received = datetime.fromtimestamp(envelope.timestamp / 1000, UTC)
    known = is_person and data.groupInfo is None
    if data.reaction is not None:
        reaction = data.reaction
        emoji = "".join(c for c in reaction.emoji if c not in _MODIFIERS)
        if reaction.isRemove or emoji != THUMBS_DOWN:
            return None
        target = str(reaction.targetSentTimestamp)
        return Reply(
            sender=sender,
            text=THUMBS_DOWN,
            in_reply_to=target,
            received_at=received,
            known_sender=known,
        )
    if not data.message:
        return None
    return Reply(
        sender=sender,
        text=data.message,
        in_reply_to=str(data.quote.id) if data.quote else None,
        received_at=received,
        known_sender=known,
    )
