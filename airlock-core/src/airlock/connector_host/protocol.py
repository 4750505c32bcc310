"""The private channel between the daemon's core and its connector host.

One stream socket carries length-prefixed JSON frames: four bytes of big-endian length,
then a UTF-8 JSON object. Every request has an ``id`` (a positive integer the core
chooses) and a ``kind``; the host answers each with frames carrying the same ``id``:

* one ``{"id": N, "ok": {...}}`` or ``{"id": N, "error": {"code", "message", ...}}``;
* for ``kind: "priced"`` (a call that spends money), frames before it: first
  ``{"id": N, "quote": {...}}``, the call's worst case; then, only if that is within the
  request's ``ceiling_nano`` (what the core holds of the budget for it), either the
  streamed call's ``chunk``, ``meter`` and ``charge`` frames or one frame with its
  ``result`` and ``charge``.

``{"kind": "cancel", "target": N}`` asks the host to stop request N (no answer).

What crosses is small and checked: a frame over its direction's limit ends the
connection (the other side is broken or hostile); a request names only a service, an
operation, its validated parameters and the session's budget figures, never a token or
a code; an answer is the result model's JSON, which the core validates again.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any, Final

from airlock.common.json_text import compact_encoder, read_json
from airlock.common.text import SURROGATE_ESCAPE, mend_halves
from airlock.errors import (
    AirlockError,
    BudgetExhausted,
    ConfigError,
    ConnectorError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    VaultError,
    error_class_for,
)

__all__ = [
    "ANSWERS_PER_WRITE",
    "MAX_ANSWER_BYTES",
    "MAX_REQUEST_BYTES",
    "ChannelBroken",
    "FrameReader",
    "Outbox",
    "decode_error",
    "encode_error",
    "write_frame",
]

MAX_REQUEST_BYTES: Final = 2 * 1024 * 1024
"""Core → host: an agent's body is at most 1 MiB; params plus framing stay below this."""
MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
"""Host → core: one result (a mailbox listing, a chunk, a tool's output)."""
_HEADER = struct.Struct(">I")
MAX_RETRY_AFTER: Final = 86_400
"""The longest wait (seconds) a host's error may ask of the agent."""

# What a host may answer with: errors about the call, the service or the vault. Anything
# else (a forged ``unauthenticated``, ``approval_required``) becomes a plain service error.
_HOST_ERRORS: tuple[type[AirlockError], ...] = (
    InvalidInput,
    NotFound,
    ConnectorError,
    RateLimited,
    BudgetExhausted,
    VaultError,
    ConfigError,
)


class ChannelBroken(Exception):
    """The other side closed the channel or sent something that is not a frame."""


class FrameReader:
    """The frames arriving on one stream, in order. What has arrived is taken in one
    read and its frames parsed from there: two awaited ``readexactly`` a frame (its
    length, then its payload) cost about as much as the JSON in it.

    :meth:`next` raises ``ChannelBroken`` at the end of the stream and on a frame over
    *limit* bytes or not a JSON object: the other side is broken or hostile."""

    __slots__ = ("_at", "_data", "_limit", "_reader")

    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self._reader = reader
        self._limit = limit
        self._data = b""
        self._at = 0

    async def next(self) -> dict[str, Any]:
        """The next frame's object."""
        data, at = self._data, self._at
        if len(data) - at >= _HEADER.size:
            (size,) = _HEADER.unpack_from(data, at)
            start = at + _HEADER.size
            end = start + size
            if size <= self._limit and end <= len(data):
                if end == len(data):  # all taken: the buffer goes now, not at the next read
                    self._data, self._at = b"", 0
                else:
                    self._at = end
                return _message(data[start:end])
        del data  # not held while the channel is quiet (it may be a 16 MiB answer)
        return await self._arriving()

    async def _arriving(self) -> dict[str, Any]:
        """The next frame, once it is all here (read in one go after its length: a
        large answer is not gathered piece by piece). What has arrived stays in the
        reader while it waits, so a wait cancelled loses nothing."""
        self._data, self._at = self._data[self._at :], 0
        try:
            while len(self._data) < _HEADER.size:
                more = await self._reader.read(_READ_SIZE)
                if not more:
                    raise asyncio.IncompleteReadError(self._data, None)
                self._data += more
            (size,) = _HEADER.unpack_from(self._data)
            if size > self._limit:
                raise ChannelBroken(f"a frame of {size} bytes is over the {self._limit} byte limit")
            missing = _HEADER.size + size - len(self._data)
            if missing > 0:  # readexactly takes nothing until all of it is here
                self._data += await self._reader.readexactly(missing)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            where = " inside a frame" if self._data else ""
            raise ChannelBroken(f"the channel closed{where}") from exc
        self._at = _HEADER.size + size
        return _message(self._data[_HEADER.size : self._at])


_READ_SIZE = 256 * 1024
"""At most this much is taken from the stream at a time (what it holds)."""


def _message(payload: bytes) -> dict[str, Any]:
    try:
        message = read_json(payload)
    except RecursionError:  # a few KiB of "[[[[" is enough: broken or hostile, like the rest
        raise ChannelBroken("a frame is nested too deeply to read") from None
    except ValueError:
        raise ChannelBroken("a frame is not JSON") from None
    if not isinstance(message, dict):
        raise ChannelBroken("a frame is not a JSON object")
    if SURROGATE_ESCAPE.search(payload):  # a service's text with half a pair: mended
        mend_halves(message)
    return message


# A frame holds parsed JSON and models' dumps: trees, as compact_encoder's need.
_AS_UTF8 = compact_encoder(ensure_ascii=False)
_AS_ASCII = compact_encoder()


def frame(message: dict[str, Any], limit: int) -> bytes:
    """*message* as one frame; ``ValueError`` when it is over *limit* bytes."""
    try:
        payload = _AS_UTF8(message).encode("utf-8")
    except UnicodeEncodeError:  # half of a UTF-16 pair in a text: escaped, mended on arrival
        payload = _AS_ASCII(message).encode("ascii")
    if len(payload) > limit:
        raise ValueError(f"{len(payload)} bytes is over the {limit} byte limit")
    return _HEADER.pack(len(payload)) + payload


def write_frame(writer: asyncio.StreamWriter, message: dict[str, Any], limit: int) -> None:
    """Queue *message* as one frame (written whole: frames never interleave)."""
    writer.write(frame(message, limit))


ANSWERS_PER_WRITE: Final = 8
"""The host writes its answers in groups of at most this many (see :class:`Outbox`)."""


class Outbox:
    """Frames for one connection, written once a turn of the event loop: the frames of
    every request (or answer) that turn produced go out in one ``write``, so the other
    side wakes once for them all instead of once each. In order; never interleaved.

    With *per_write*, a turn's frames go out in writes of at most that many: the host's
    answers do, so the core validates, filters and audits the first while the host still
    runs the rest. Without it, at 32 clients the host answered all 32 in one write after
    ~2 ms of work, and the core's event loop sat idle until then (a third of the time).
    The core's requests still go in one write a turn: a write to a host that sleeps wakes
    it on the other core, a cost here, while the core's busy loop reads answers cheaply.
    """

    def __init__(self, writer: asyncio.StreamWriter, *, per_write: int | None = None) -> None:
        self.writer = writer
        self._frames: list[bytes] = []
        self._per_write = per_write
        self._loop = asyncio.get_running_loop()

    def put(self, data: bytes) -> None:
        """Queue one whole frame (from :func:`frame`) for the end of this turn (or
        write the group it completes)."""
        if not self._frames:
            self._loop.call_soon(self.flush)
        self._frames.append(data)
        if self._per_write is not None and len(self._frames) >= self._per_write:
            self.flush()

    def flush(self) -> None:
        frames, self._frames = self._frames, []
        if frames and not self.writer.is_closing():
            with contextlib.suppress(ConnectionError):  # the reader sees the channel close
                self.writer.writelines(frames)


def encode_error(exc: AirlockError) -> dict[str, Any]:
    body: dict[str, Any] = exc.to_dict()
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float):
        body["retry_after"] = retry_after
    return body


def decode_error(body: Any) -> AirlockError:
    """The error a host answered with, limited to the kinds a host may raise."""
    if not isinstance(body, dict):
        return ConnectorError("the connector host sent a malformed error")
    code, message = body.get("code"), body.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        return ConnectorError("the connector host sent a malformed error")
    cls = error_class_for(code)
    # A connector may refuse a call its settings do not allow (403), but never speak for
    # the person: denied and approval_required are the core's to say.
    if not (issubclass(cls, _HOST_ERRORS) or cls is Forbidden):
        cls = ConnectorError
    hint, field = body.get("hint"), body.get("field")
    kwargs: dict[str, Any] = {
        "hint": hint[:500] if isinstance(hint, str) else None,
        "field": field[:200] if isinstance(field, str) else None,
    }
    error = cls(message[:2000], **kwargs)
    retry_after = body.get("retry_after")
    # JSON from a host may say Infinity, NaN or 1e999: a wait the agent cannot be told
    # (no Retry-After header holds it) is left out, the error still goes through.
    if (
        isinstance(retry_after, int | float)
        and hasattr(error, "retry_after")
        and 0 <= retry_after <= MAX_RETRY_AFTER
    ):
        error.retry_after = float(retry_after)
    return error
