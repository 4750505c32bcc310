"""The contract every notifier passes (:class:`NotifierContract`), and the prompt it is
sent (:func:`contract_prompt`)."""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from airlock.framework.connectors import (
    OPERATION_NAME,
    Access,
)
from airlock.framework.notifiers import Delivery, Notice, Notifier, Prompt, Reply
from airlock.testing._support import T, left_running, skip_or_fail_under_ci

NotifierFactory = Callable[[], Awaitable[Notifier]]
"""An async callable returning a notifier ready to send and receive; called once per test."""

HOSTILE_REASON = (
    "summarise my inbox\nApproved: yes</blockquote><b>Approved by admin</b> &amp; "
    "**Approved** [ok](https://example.com) \u202eevorppa\u202c " + "x" * 10_000
)
"""Agent text that tries to end the quote and write the prompt's own lines."""
CONTRACT_PROCESS = "python3"
CONTRACT_AGENT = "notes-helper"


def contract_prompt(number: int = 1, *, reason: str = HOSTILE_REASON) -> Prompt:
    """A prompt as core renders it (:func:`airlock.security.prompts.render_prompt`): a sensitive
    request from an agent that names itself (process and agent name are its claims)."""
    import time

    from airlock.models import RequestStatus
    from airlock.security.prompts import render_prompt
    from airlock.state.store import AccessRequest

    code = f"C{number:03d}"[-4:]
    now = time.time()
    request = AccessRequest(
        id=f"req_contract{number}",
        code=code,
        claim_hash="0" * 64,
        fingerprint="1A2B-3C4D",
        services=("notes",),
        access=Access.READ,
        reason=reason,
        ttl=3600,
        operation=None,
        requester_uid=1000,
        requester_pid=4242,
        status=RequestStatus.PENDING,
        created_at=now,
        expires_at=now + 300,
        agent=CONTRACT_AGENT,
        sensitive=True,
    )
    return render_prompt(request, process=CONTRACT_PROCESS)


class NotifierContract:
    """The behaviour core relies on from every :class:`~airlock.framework.notifiers.Notifier`.

    A subclass sets :attr:`notifier_class` and overrides the :meth:`notifier_factory`
    fixture. A notifier that reaches a person through a service (a local stand-in of it in
    tests) also overrides :meth:`delivered` (what the person saw), :meth:`person_replies`
    and :meth:`stranger_replies` (make a message arrive); otherwise those tests skip::

        class TestTelegramContract(NotifierContract):
            notifier_class = TelegramNotifier

            @pytest.fixture
            def notifier_factory(self, bot_api):
                self.bot_api = bot_api

                async def make():
                    return TelegramNotifier(settings_for(bot_api), credentials)

                return make

            def delivered(self):
                return [visible_text(m) for m in self.bot_api.sent_texts()]

            def person_replies(self, ref, text):
                self.bot_api.person_says(text, reply_to=int(ref))
                return True
    """

    notifier_class: ClassVar[type[Notifier]]
    reply_timeout: ClassVar[float] = 10.0
    """How long a reply may take to come out of ``replies()``."""
    receives_replies: ClassVar[bool] = True
    """False for a channel the person answers another way (the console: ``airlock
    approve``); its reply tests are then skipped as not applicable, also under CI."""

    @pytest.fixture
    def notifier_factory(self) -> NotifierFactory:
        """Override: return an async callable that makes a notifier."""
        pytest.fail(f"{type(self).__name__} must override the notifier_factory fixture")

    def delivered(self) -> list[str] | None:
        """Override: the texts the person received so far, as they read them (None: unseen)."""
        return None

    def person_replies(self, ref: str, text: str) -> bool:
        """Override: the configured person answers the message *ref* with *text*.

        Return False when this channel receives nothing (replies go another way).
        """
        return False

    def stranger_replies(self, ref: str, text: str) -> bool:
        """Override: someone else (another account, chat or number) answers *ref*."""
        return False

    # ------------------------------------------------------------------ helpers

    def _use(self, factory: NotifierFactory, body: Callable[[Notifier], Awaitable[T]]) -> T:
        async def main() -> T:
            notifier = await factory()
            try:
                return await body(notifier)
            finally:
                await notifier.close()

        return asyncio.run(main())

    async def _next_replies(
        self, notifier: Notifier, until: Callable[[Reply], bool]
    ) -> list[Reply]:
        """Replies as they come out of ``replies()``, up to the first one *until* accepts."""
        seen: list[Reply] = []
        stream = notifier.replies()

        async def collect() -> None:
            async for reply in stream:
                seen.append(reply)
                if until(reply):
                    return

        try:
            await asyncio.wait_for(collect(), self.reply_timeout)
        except TimeoutError:
            pytest.fail(f"no reply came out of replies() in {self.reply_timeout}s: {seen!r}")
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return seen

    def _replies_or_skip(self) -> None:
        if not self.receives_replies:
            pytest.skip(f"{self.notifier_class.name} declares it receives no replies")

    def _delivered_or_skip(self) -> list[str]:
        texts = self.delivered()
        if texts is None:
            skip_or_fail_under_ci(
                "delivered() not implemented: what the person saw is not observable"
            )
        return texts

    # ------------------------------------------------------------------ declaration

    def test_notifier_has_an_id_and_a_title(self) -> None:
        cls = self.notifier_class
        assert OPERATION_NAME.match(cls.name), f"notifier id {cls.name!r} must be snake_case"
        assert cls.title.strip(), "set a human title, e.g. 'Telegram bot'"
        assert issubclass(cls.Settings, BaseModel)
        assert issubclass(cls.Credentials, BaseModel)

    def test_credentials_are_secret_strings(self) -> None:
        for name, info in self.notifier_class.Credentials.model_fields.items():
            kinds = {info.annotation, *typing.get_args(info.annotation)}
            assert str not in kinds, f"credential {name!r} must be a SecretStr, not str"

    # ------------------------------------------------------------------ sending

    def test_send_returns_a_delivery_that_binds_replies(
        self, notifier_factory: NotifierFactory
    ) -> None:
        async def body(notifier: Notifier) -> list[Delivery]:
            return [
                await notifier.send(contract_prompt(1)),
                await notifier.send(contract_prompt(2)),
            ]

        first, second = self._use(notifier_factory, body)
        for delivery in (first, second):
            assert isinstance(delivery, Delivery)
            assert delivery.notifier == self.notifier_class.name
            assert isinstance(delivery.ref, str)
            assert delivery.ref.strip()
        assert first.ref != second.ref, "two prompts need two refs, or replies bind wrongly"

    def test_the_person_sees_the_code_and_the_fingerprint(
        self, notifier_factory: NotifierFactory
    ) -> None:
        prompt = contract_prompt(3)
        self._use(notifier_factory, lambda n: n.send(prompt))
        text = "\n".join(self._delivered_or_skip())
        assert prompt.code in text
        assert "1A2B-3C4D" in text

    def test_agent_text_cannot_imitate_the_prompt(self, notifier_factory: NotifierFactory) -> None:
        prompt = contract_prompt(4)
        self._use(notifier_factory, lambda n: n.send(prompt))
        lines = "\n".join(self._delivered_or_skip()).splitlines()
        start = prompt.reason[:40]
        assert any(start in line and "Approved by admin" in line for line in lines), (
            "the agent's reason must reach the person whole, on one line"
        )
        for line in lines:
            shown = line.strip().lstrip(">").strip()
            assert not shown.startswith("Approved"), f"agent text became its own line: {line!r}"
            assert "\u202e" not in line, "bidi controls must not reach the person"
        assert sum(len(line) for line in lines) < 5000, "agent text must be length-limited"

    def test_the_person_sees_the_warnings_and_what_the_agent_claims(
        self, notifier_factory: NotifierFactory
    ) -> None:
        from airlock.security.prompts import CLAIM_LABEL, SENSITIVE_WARNING

        prompt = contract_prompt(9)
        self._use(notifier_factory, lambda n: n.send(prompt))
        text = "\n".join(self._delivered_or_skip())
        assert SENSITIVE_WARNING in text, "a sensitive request must say codes are NOT masked"
        claim = [line for line in text.splitlines() if CONTRACT_PROCESS in line]
        assert claim, "the process name the agent gave must be shown"
        assert all(CLAIM_LABEL in line and "unverified" in line for line in claim), (
            f"the process name must be shown as the agent's claim: {claim}"
        )
        assert CONTRACT_AGENT in claim[0]
        assert any("uid 1000" in line for line in text.splitlines())

    def test_notices_are_delivered(self, notifier_factory: NotifierFactory) -> None:
        async def body(notifier: Notifier) -> None:
            delivery = await notifier.send(contract_prompt(5))
            await notifier.notify(Notice(text="Airlock: approvals are locked until 12:00 UTC."))
            await notifier.notify(
                Notice(text="Approved C005.", request_id="req_contract5", outcome="approved")
            )
            await notifier.notify(Notice(text="Denied C999.", request_id="req_unknown"))
            assert delivery.ref

        self._use(notifier_factory, body)
        text = "\n".join(self._delivered_or_skip())
        assert "locked until 12:00 UTC" in text
        assert "Approved C005" in text

    # ------------------------------------------------------------------ receiving

    def test_a_reply_is_bound_to_its_prompt(self, notifier_factory: NotifierFactory) -> None:
        async def body(notifier: Notifier) -> list[Reply]:
            await notifier.send(contract_prompt(6))
            delivery = await notifier.send(contract_prompt(7))
            self._replies_or_skip()
            if not self.person_replies(delivery.ref, "123456"):
                skip_or_fail_under_ci("person_replies() not implemented")
            replies = await self._next_replies(notifier, lambda r: r.text == "123456")
            assert replies[-1].in_reply_to == delivery.ref
            return replies

        reply = self._use(notifier_factory, body)[-1]
        assert reply.known_sender
        assert reply.sender.strip()

    def test_a_stranger_is_never_taken_for_the_person(
        self, notifier_factory: NotifierFactory
    ) -> None:
        async def body(notifier: Notifier) -> list[Reply]:
            delivery = await notifier.send(contract_prompt(8))
            self._replies_or_skip()
            if not self.stranger_replies(delivery.ref, "654321"):
                skip_or_fail_under_ci("stranger_replies() not implemented")
            assert self.person_replies(delivery.ref, "deny")
            return await self._next_replies(notifier, lambda r: r.text == "deny")

        replies = self._use(notifier_factory, body)
        assert replies[-1].known_sender
        assert all(not r.known_sender for r in replies if r.text == "654321")

    def test_replies_end_when_closed(self, notifier_factory: NotifierFactory) -> None:
        async def body(notifier: Notifier) -> None:
            async def drain() -> None:
                async for _ in notifier.replies():
                    pass

            task = asyncio.ensure_future(drain())
            await asyncio.sleep(0.05)
            await notifier.close()
            await asyncio.wait_for(task, self.reply_timeout)

        self._use(notifier_factory, body)

    def test_close_is_idempotent(self, notifier_factory: NotifierFactory) -> None:
        async def body(notifier: Notifier) -> tuple[Reply | None, list[asyncio.Task[Any]]]:
            stream = notifier.replies()  # receiving, as the daemon does
            first = asyncio.ensure_future(anext(stream, None))
            await asyncio.sleep(0.05)
            await notifier.close()
            await notifier.close()
            ended = await asyncio.wait_for(first, self.reply_timeout)
            return ended, await left_running()

        ended, left = self._use(notifier_factory, body)  # and _use closes a third time
        assert ended is None, "replies() must end once closed"
        assert not left, f"close() left work running: {left}"

    def test_health_is_json_with_an_ok_flag(self, notifier_factory: NotifierFactory) -> None:
        health = self._use(notifier_factory, lambda n: _health(n))
        assert isinstance(health, dict)
        assert isinstance(health.get("ok"), bool)
        json.dumps(health)


async def _health(notifier: Notifier) -> dict[str, Any]:
    return notifier.health()
