"""A local Telegram Bot API server speaking the documented wire format
(core.telegram.org/bots/api): ``/bot<TOKEN>/<method>`` with JSON bodies, ``{"ok": true,
"result": ...}`` or ``{"ok": false, "error_code", "description", "parameters"}`` with the
same HTTP status; real long-polling ``getUpdates`` with offsets (a second poller ends the
first with 409, as Telegram does); HTML parse mode checked like Telegram checks it (only
its tags, balanced, or 400 "can't parse entities"); 4,096-character and 64-byte limits.

The person and strangers act through :meth:`say` and :meth:`press`; failures are
injected with :meth:`fail`; :meth:`stop`/:meth:`start` make an outage.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

from tests.notifier_harness.threaded_server import ThreadedServer

PERSON = 5001  # in a private chat, the chat id is the user's id
STRANGER = 6666
GROUP_CHAT = -100777
BOT = {"id": 4242, "is_bot": True, "first_name": "Airlock", "username": "airlock_test_bot"}
TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "code", "pre", "blockquote", "tg-emoji",
}  # fmt: skip


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


ENDLESS_LIMIT = 64 << 20
"""An endless answer gives up after this many bytes (a client without a cap reads it all)."""


class _Endless(Exception):
    def __init__(self, update_id: int) -> None:
        super().__init__(update_id)
        self.update_id = update_id


class _Entities(HTMLParser):
    """Telegram's HTML rules: known tags only, properly nested; text is what remains."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TAGS:
            raise ApiError(400, f"Bad Request: can't parse entities: unsupported start tag {tag}")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            raise ApiError(400, f"Bad Request: can't parse entities: unexpected end tag {tag}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible_text(text: str, parse_mode: str | None) -> str:
    if parse_mode != "HTML":
        return text
    parser = _Entities()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise ApiError(400, "Bad Request: can't parse entities: unclosed tag")
    return "".join(parser.text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class BotApiServer:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.answered: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(100)
        self._message_ids = itertools.count(1)
        self._failures: dict[str, list[ApiError]] = {}
        self._generation = 0
        self.endless_written: list[int] = []
        """Bytes of each endless answer written before the client stopped reading."""
        self._changed: asyncio.Condition | None = None
        self.server = ThreadedServer(self._app)

    # -- the HTTP side --------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    @property
    def url(self) -> str:
        return self.server.url

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        payload = await request.json() if request.can_read_body else dict(request.query)
        self.calls.append((method, payload))
        queued = self._failures.get(method)
        if queued:
            return _error(queued.pop(0))
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(ApiError(404, "Not Found"))
        try:
            result = await handler(payload)
        except ApiError as exc:
            return _error(exc)
        except _Endless as endless:
            return await self._endless(request, endless.update_id)
        return web.json_response({"ok": True, "result": result})

    async def _endless(self, request: web.Request, update_id: int) -> web.StreamResponse:
        """An answer whose one update's text never ends (up to ENDLESS_LIMIT)."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        start = json.dumps(
            {"ok": True, "result": [{"update_id": update_id, "message": {"text": ""}}]}
        )
        head = start[: start.index('"text": "') + len('"text": "')].encode()
        written = 0
        try:
            await response.write(head)
            while written < ENDLESS_LIMIT:
                await response.write(b"A" * 65536)
                written += 65536
        except (ConnectionError, RuntimeError):
            pass
        self.endless_written.append(written)
        return response

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _api_getMe(self, payload: dict[str, Any]) -> Any:
        return BOT

    async def _api_getUpdates(self, payload: dict[str, Any]) -> Any:
        offset = int(payload.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        allowed = payload.get("allowed_updates") or ["message", "callback_query"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(payload.get("timeout") or 0)
        async with self.changed:
            self._generation += 1
            mine = self._generation
            self.changed.notify_all()
            while True:
                ready = [u for u in self._updates if any(kind in u for kind in allowed)]
                if ready and ready[0].get("endless"):
                    raise _Endless(ready[0]["update_id"])
                if ready:
                    return ready[: int(payload.get("limit") or 100)]
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                try:
                    await asyncio.wait_for(self.changed.wait(), remaining)
                except TimeoutError:
                    return []
                if self._generation != mine:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                    )

    async def _api_sendMessage(self, payload: dict[str, Any]) -> Any:
        chat_id = payload.get("chat_id")
        if chat_id not in (PERSON, STRANGER, GROUP_CHAT):  # each wrote to the bot
            raise ApiError(400, "Bad Request: chat not found")
        text = str(payload.get("text") or "")
        visible = visible_text(text, payload.get("parse_mode"))
        if not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        _check_markup(payload.get("reply_markup"))
        reply_to = (payload.get("reply_parameters") or {}).get("message_id")
        message = {
            "message_id": next(self._message_ids),
            "from": BOT,
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
            "text": visible,
        }
        self.messages[message["message_id"]] = {
            **message,
            "html": text,
            "parse_mode": payload.get("parse_mode"),
            "reply_markup": payload.get("reply_markup"),
            "reply_to": reply_to,
            "link_preview_options": payload.get("link_preview_options"),
        }
        return message

    async def _api_editMessageText(self, payload: dict[str, Any]) -> Any:
        stored = self.messages.get(int(payload.get("message_id") or 0))
        if stored is None or stored["chat"]["id"] != payload.get("chat_id"):
            raise ApiError(400, "Bad Request: message to edit not found")
        text = str(payload.get("text") or "")
        visible = visible_text(text, payload.get("parse_mode"))
        markup = payload.get("reply_markup")
        if visible == stored["text"] and markup == stored["reply_markup"]:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        _check_markup(markup)
        stored.update(text=visible, html=text, reply_markup=markup, edited=True)
        return {k: stored[k] for k in ("message_id", "from", "chat", "date", "text")}

    async def _api_answerCallbackQuery(self, payload: dict[str, Any]) -> Any:
        self.answered.append(payload)
        return True

    # -- the people ------------------------------------------------------------------------

    def say(
        self,
        text: str,
        *,
        reply_to: int | None = None,
        user: int = PERSON,
        chat: int = PERSON,
        age: float = 0.0,
    ) -> int:
        """A message to the bot, maybe a reply to one of its messages; returns its update id."""
        message: dict[str, Any] = {
            "message_id": 10_000 + len(self.calls),
            "from": {"id": user, "is_bot": False, "first_name": "P", "username": f"u{user}"},
            "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
            "date": int(time.time() - age),
            "text": text,
        }
        if reply_to is not None:
            original = self.messages[reply_to]
            message["reply_to_message"] = {k: original[k] for k in ("message_id", "from", "chat")}
        return self._push({"message": message})

    def press(self, message_id: int, *, user: int = PERSON, data: str | None = None) -> int:
        """A press of the first inline button under one of the bot's messages."""
        original = self.messages[message_id]
        button = original["reply_markup"]["inline_keyboard"][0][0]
        query = {
            "id": f"cbq{message_id}{user}",
            "from": {"id": user, "is_bot": False, "first_name": "P"},
            "message": {k: original[k] for k in ("message_id", "from", "chat", "date", "text")},
            "chat_instance": "1",
            "data": data if data is not None else button["callback_data"],
        }
        return self._push({"callback_query": query})

    def push_raw(self, update: dict[str, Any]) -> int:
        """An update as given (any types, any size); it gets the next update id."""
        return self._push(update)

    def push_endless(self) -> int:
        """An update whose getUpdates answer never ends: Telegram would never send it."""
        return self._push({"message": {}, "endless": True})

    def _push(self, update: dict[str, Any]) -> int:
        async def push() -> int:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **update})
            async with self.changed:
                self.changed.notify_all()
            return update_id

        return self.server.call(push())

    def fail(
        self,
        method: str,
        code: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next *times* calls of *method* fail with this error."""
        errors = [ApiError(code, description, retry_after) for _ in range(times)]
        self._failures.setdefault(method, []).extend(errors)

    # -- what happened ---------------------------------------------------------------------

    def sent(self) -> list[dict[str, Any]]:
        return [dict(m) for m in self.messages.values()]

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [payload for name, payload in list(self.calls) if name == method]

    def pending_updates(self) -> int:
        return len(self._updates)

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()

    def close(self) -> None:
        self.server.close()


def _check_markup(markup: Any) -> None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if len(str(button.get("callback_data", "")).encode()) > 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _error(exc: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return web.json_response(body, status=exc.code)
