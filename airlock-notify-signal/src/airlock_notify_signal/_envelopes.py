"""What a received envelope means for core: a Reply, or nothing.

A text message is a reply to the prompt it quotes (``dataMessage.quote.id`` is the
prompt's send timestamp); a 👎 reaction to a prompt (``reaction.targetSentTimestamp``) is
"👎", which core reads as deny. Receipts, typing, sync messages, other reactions and
removed reactions mean nothing. Only direct messages from the configured person count as
theirs; anything else is handed to core marked ``known_sender=False`` for its audit.
Messages from before the notifier started (a queue built up while the daemon was down)
are dropped: an old code would only count as a wrong one.

Anyone can write to the number, and the sender chooses a message's timestamp, so an
envelope is hostile input: the models are strict (no coercion), numbers are 64-bit and a
timestamp must be a date (up to the year 9999), names and ids are bounded, and a text
over :data:`MAX_TEXT` is not passed on (a stranger's still reaches core's audit, without
its text; the person's is dropped). What is skipped is logged with the reason only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airlock.plugin import Reply, get_logger, problem_fields

__all__ = ["MAX_TEXT", "THUMBS_DOWN", "for_another_account", "read_envelope", "sent_by_person"]

log = get_logger("airlock.signal")

THUMBS_DOWN = "👎"
_MODIFIERS = {"\ufe0f", *(chr(c) for c in range(0x1F3FB, 0x1F400))}  # skin tones, VS16
MAX_TEXT = 8192
"""The longest text passed on. Signal clients send at most 2,000 bytes inline (the rest
goes as a long-text attachment, which is not read); a code is six digits."""

Int64 = Annotated[int, Field(ge=-(2**63), lt=2**63)]
Millis = Annotated[int, Field(ge=0, le=253_402_300_799_999)]  # up to 9999-12-31
Name = Annotated[str, Field(max_length=128)]


class _Model(BaseModel):
    """Fields keep the wire's camelCase names, so the models read like the JSON."""

    model_config = ConfigDict(extra="ignore", strict=True)


class _Quote(_Model):
    id: Int64


class _Reaction(_Model):
    emoji: str = Field(max_length=32)
    targetSentTimestamp: Int64
    isRemove: bool = False


class _Data(_Model):
    timestamp: Int64 | None = None
    message: str | None = None
    quote: _Quote | None = None
    reaction: _Reaction | None = None
    groupInfo: dict[str, Any] | None = None


class _Envelope(_Model):
    source: Name | None = None
    sourceNumber: Name | None = None
    sourceUuid: Name | None = None
    timestamp: Millis
    dataMessage: _Data | None = None


class _Item(_Model):
    envelope: _Envelope


def sent_by_person(
    number: object, uuid: object, *, recipient: str | None, recipient_uuid: str | None
) -> bool:
    """Whether a message whose sender signal-cli names *number* (``sourceNumber``, else
    ``source``) and *uuid* (``sourceUuid``) is the person's. Signal authenticates the
    sender, so a stranger cannot pass for them; any of the person's devices counts."""
    return (recipient is not None and number == recipient) or (
        recipient_uuid is not None and uuid == recipient_uuid
    )


def for_another_account(item: Any, account: str) -> bool:
    """Whether *item* (``{"envelope", "account"}`` as received) came to another account
    than *account*. A signal-cli (or signal-cli-rest-api in ``json-rpc`` mode) serving
    several numbers hands every connection every account's messages: the person's code
    sent to another of them, which an agent could ask them for, answers nothing here. An
    item that names no account is this one's (a single-account signal-cli)."""
    return isinstance(item, dict) and item.get("account", account) != account


def read_envelope(
    raw: Any, *, recipient: str, recipient_uuid: str | None, not_before: float
) -> Reply | None:
    try:
        envelope = _Item.model_validate(raw).envelope
    except ValidationError as exc:
        places = problem_fields(exc)
        log.warning("signal_envelope_skipped", why="malformed: " + ", ".join(places))
        return None
    data = envelope.dataMessage
    if data is None or envelope.timestamp / 1000 < not_before:
        return None
    number = envelope.sourceNumber or envelope.source
    is_person = sent_by_person(
        number, envelope.sourceUuid, recipient=recipient, recipient_uuid=recipient_uuid
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
    text = data.message
    if len(text) > MAX_TEXT:
        log.warning(
            "signal_envelope_skipped", why=f"text over {MAX_TEXT} characters", passed_on=not known
        )
        if known:
            return None
        text = ""  # a stranger's: still audited by core, without the text
    return Reply(
        sender=sender,
        text=text,
        in_reply_to=str(data.quote.id) if data.quote else None,
        received_at=received,
        known_sender=known,
    )
