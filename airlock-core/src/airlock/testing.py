"""Test helpers for plugin authors: contract suites that every component must pass.

Like ``langchain-tests``: a plugin's test module subclasses a contract class, says how
to make its component, and inherits a set of tests that check what core relies on. Our
own connectors pass the same suites, so a third-party plugin gets the same checks.

Only tests import this module; it needs pytest, and deliberately not pytest-asyncio
(coroutines run with :func:`asyncio.run`).

Connectors — :class:`ConnectorContract`::

    import pytest
    from airlock.testing import ConnectorContract

    class TestExampleContract(ConnectorContract):
        connector_class = ExampleConnector
        read_params = {"list_things": {}, "get_thing": {"id": "42"}}

        @pytest.fixture
        def connector_factory(self, tmp_path):
            self.root = make_sample_service(tmp_path)   # fixtures may keep state on self

            async def make():
                settings = ExampleConnector.parse_settings({"path": str(self.root)}, service="t")
                connector = ExampleConnector(settings, ExampleConnector.Credentials(), service="t")
                await connector.open()
                return connector

            return make

        def snapshot(self):                     # optional: what reads must not change
            return sorted(p.name for p in self.root.iterdir())

Notifiers — :class:`NotifierContract`: the same pattern with a ``notifier_factory``
fixture, plus optional hooks to see what the person received and to make them reply.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, NoReturn, TypeVar

import pytest
from pydantic import BaseModel

from airlock.errors import InvalidInput, NotFound
from airlock.framework.connectors import (
    OPENAI_PATHS,
    OPERATION_NAME,
    Access,
    CheckResult,
    Connector,
    OperationSpec,
)
from airlock.framework.notifiers import Delivery, Notice, Notifier, Prompt, Reply

__all__ = [
    "ConnectorContract",
    "ConnectorFactory",
    "NotifierContract",
    "NotifierFactory",
    "contract_prompt",
    "run",
    "skip_or_fail_under_ci",
    "under_ci",
]

T = TypeVar("T")

ConnectorFactory = Callable[[], Awaitable[Connector]]
"""An async callable returning an opened connector; called once per test."""

_NOT_A_SCALAR: Any = [[{"x": None}]]


def under_ci() -> bool:
    """Whether this is a CI run: ``CI`` set to ``true`` or ``1`` (as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true")


def skip_or_fail_under_ci(reason: str) -> NoReturn:
    """Skip a test that cannot run here; under CI fail instead, so nothing that should
    have been checked passes unseen (a missing server, tool, privilege or hook)."""
    if under_ci():
        pytest.fail(f"{reason} (CI is set: this test must run)", pytrace=False)
    pytest.skip(reason)


"""A value no str, number, bool or date field accepts; fields that do accept it are skipped."""


def run(coro: Awaitable[T]) -> T:
    """Run *coro* to completion on a fresh event loop (no pytest-asyncio needed)."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())


# ---------------------------------------------------------------------------- connectors


class ConnectorContract:
    """The behaviour core relies on from every :class:`~airlock.framework.connectors.Connector`.

    A subclass sets :attr:`connector_class` and :attr:`read_params`, overrides the
    :meth:`connector_factory` fixture, and may override :meth:`snapshot`.
    """

    connector_class: ClassVar[type[Connector]]
    read_params: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    """Valid sample params for every read operation, so none goes untested."""
    spend_params: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    """Valid sample params for every spend operation: each must be priced by ``quote``."""

    @pytest.fixture
    def connector_factory(self) -> ConnectorFactory:
        """Override: return an async callable that makes an opened connector."""
        pytest.fail(f"{type(self).__name__} must override the connector_factory fixture")

    def snapshot(self) -> object | None:
        """Override: the observable state of the service (None: not observable)."""
        return None

    # ------------------------------------------------------------------ helpers

    @pytest.fixture
    def operations(self, request: pytest.FixtureRequest) -> dict[str, OperationSpec]:
        """The declared operations and, for a connector that lists operations when it
        opens, those it lists (a connector is opened to ask)."""
        ops = dict(self.connector_class.operations)
        if self.connector_class.lists_operations:
            factory: ConnectorFactory = request.getfixturevalue("connector_factory")

            async def listed(connector: Connector) -> dict[str, OperationSpec]:
                return dict(connector.listed)

            ops.update(self._use(factory, listed))
        return ops

    @staticmethod
    def _select(
        ops: Mapping[str, OperationSpec], access: Access | None = None
    ) -> dict[str, OperationSpec]:
        return {n: s for n, s in ops.items() if access is None or s.access is access}

    @staticmethod
    def _param_names(spec: OperationSpec) -> list[str]:
        if spec.input_schema is not None:
            return list(spec.params_schema().get("properties", {}))
        return list(spec.params.model_fields)

    def _use(self, factory: ConnectorFactory, body: Callable[[Connector], Awaitable[T]]) -> T:
        """Open a connector (and let it list its operations, as core does), run *body*
        with it, and close it, on one event loop."""

        async def main() -> T:
            connector = await factory()
            try:
                await connector.discover()
                return await body(connector)
            finally:
                await connector.close()

        return asyncio.run(main())

    def _expect_invalid(
        self, factory: ConnectorFactory, calls: list[tuple[str, dict[str, Any]]]
    ) -> list[InvalidInput]:
        async def body(connector: Connector) -> list[InvalidInput]:
            raised: list[InvalidInput] = []
            for name, params in calls:
                try:
                    await connector.call(name, params)
                except InvalidInput as exc:
                    raised.append(exc)
                else:
                    pytest.fail(f"{name} accepted invalid params {params!r}")
            return raised

        return self._use(factory, body)

    # ------------------------------------------------------------------ declaration

    def test_connector_has_an_id_and_a_title(self) -> None:
        cls = self.connector_class
        assert OPERATION_NAME.match(cls.name), f"connector id {cls.name!r} must be snake_case"
        assert cls.title.strip(), "set a human title, e.g. 'Local Maildir'"
        assert issubclass(cls.Settings, BaseModel)
        assert issubclass(cls.Credentials, BaseModel)

    def test_operations_are_declared_completely(self, operations: dict[str, OperationSpec]) -> None:
        ops = operations
        assert ops, "declare operations with @operation (or list them at open)"
        for name, spec in ops.items():
            assert spec.name == name
            assert OPERATION_NAME.match(name), f"{name!r} is not snake_case"
            assert spec.description.strip(), f"{name}: needs a description"
            assert "\n" not in spec.description, f"{name}: the description is one line"
            assert isinstance(spec.access, Access), name
            assert issubclass(spec.params, BaseModel), name
            assert issubclass(spec.result, BaseModel), name
            if spec.input_schema is not None:  # listed: checked against its JSON Schema
                assert spec.params_schema().get("type", "object") == "object", name
                listed_runner = self.connector_class.run_listed
                assert listed_runner is not Connector.run_listed, "implement run_listed"
                continue
            assert spec.params.model_config.get("extra") == "forbid", (
                f"{name}: params model must forbid unknown fields (subclass airlock.plugin.Params)"
            )
            assert inspect.iscoroutinefunction(getattr(self.connector_class, spec.method)), name
        methods = [spec.method for spec in ops.values() if spec.input_schema is None]
        assert len(set(methods)) == len(methods), "two operations share one method"

    def test_operation_schemas_are_json(self, operations: dict[str, OperationSpec]) -> None:
        for spec in operations.values():
            json.dumps(spec.params_schema())
            json.dumps(spec.result_schema())

    def test_tool_aliases_name_real_operations_and_parameters(
        self, operations: dict[str, OperationSpec]
    ) -> None:
        for alias in self.connector_class.tool_aliases:
            assert alias.operation in operations, f"{alias.tool}: no operation {alias.operation}"
            params = self._param_names(operations[alias.operation])
            for tool_arg, param in alias.args.items():
                assert param in params, f"{alias.tool}: {tool_arg} maps to unknown {param!r}"

    def test_every_read_operation_has_sample_params(
        self, operations: dict[str, OperationSpec]
    ) -> None:
        reads = set(self._select(operations, Access.READ))
        assert set(self.read_params) == reads, (
            f"read_params must cover exactly the read operations {sorted(reads)}; "
            f"got {sorted(self.read_params)}"
        )
        for name, params in self.read_params.items():
            operations[name].parse_params(params)

    def test_spend_operations_are_priced(
        self, connector_factory: ConnectorFactory, operations: dict[str, OperationSpec]
    ) -> None:
        from airlock.framework.spending import PricedConnector, Quote

        spends = set(self._select(operations, Access.SPEND))
        if not spends:
            return
        assert issubclass(self.connector_class, PricedConnector), (
            "a connector with spend operations subclasses airlock.plugin.PricedConnector"
        )
        assert set(self.spend_params) == spends, (
            f"spend_params must cover exactly the spend operations {sorted(spends)}"
        )

        async def body(connector: Connector) -> None:
            assert isinstance(connector, PricedConnector)
            for name, params in self.spend_params.items():
                parsed = connector.operation_spec(name).parse_params(params)
                quote = await connector.quote(name, parsed)
                assert isinstance(quote, Quote), name
                assert quote.usd >= 0, name
                json.dumps(quote.facts)

        self._use(connector_factory, body)

    def test_openai_operations_are_declared_operations(self) -> None:
        for path, name in self.connector_class.openai_operations.items():
            assert path in OPENAI_PATHS, f"{path!r} is not an OpenAI path Airlock serves"
            assert name in self.connector_class.operations, f"{path!r} names no operation"

    # ------------------------------------------------------------------ validation

    def test_an_unknown_operation_is_not_found(self, connector_factory: ConnectorFactory) -> None:
        async def body(connector: Connector) -> None:
            with pytest.raises(NotFound):
                await connector.call("no_such_operation", {})

        self._use(connector_factory, body)

    def test_an_unknown_parameter_is_invalid_input(
        self, connector_factory: ConnectorFactory, operations: dict[str, OperationSpec]
    ) -> None:
        calls = [
            (name, {**self.read_params.get(name, {}), "no_such_parameter": 1})
            for name in operations
        ]
        raised = self._expect_invalid(connector_factory, calls)
        for (name, _), exc in zip(calls, raised, strict=True):
            if name in self.read_params:
                assert exc.field == "no_such_parameter", (name, exc.field)

    def test_a_wrong_type_is_invalid_input(
        self, connector_factory: ConnectorFactory, operations: dict[str, OperationSpec]
    ) -> None:
        calls: list[tuple[str, dict[str, Any]]] = []
        for name, spec in operations.items():
            for field in self._param_names(spec):
                params = {**self.read_params.get(name, {}), field: _NOT_A_SCALAR}
                try:
                    spec.parse_params(params)
                except InvalidInput:
                    calls.append((name, params))  # only values the model refuses
        self._expect_invalid(connector_factory, calls)

    # ------------------------------------------------------------------ behaviour

    def test_read_results_are_json_and_round_trip(
        self, connector_factory: ConnectorFactory
    ) -> None:
        async def body(connector: Connector) -> None:
            for name, params in self.read_params.items():
                spec = connector.operation_spec(name)
                result = await connector.call(name, dict(params))
                assert isinstance(result, spec.result), name
                encoded = result.model_dump_json()
                json.loads(encoded)
                json.dumps(result.model_dump(mode="json"))
                assert spec.result.model_validate_json(encoded) == result, name

        self._use(connector_factory, body)

    def test_read_operations_leave_the_service_unchanged(
        self, connector_factory: ConnectorFactory
    ) -> None:
        before = self.snapshot()
        if before is None:
            skip_or_fail_under_ci(
                "snapshot() not implemented: the service's state is not observable"
            )

        async def body(connector: Connector) -> None:
            await connector.check()
            for name, params in self.read_params.items():
                await connector.call(name, dict(params))

        self._use(connector_factory, body)
        assert self.snapshot() == before

    def test_check_says_what_it_found(self, connector_factory: ConnectorFactory) -> None:
        async def body(connector: Connector) -> CheckResult:
            return await connector.check()

        result = self._use(connector_factory, body)
        assert isinstance(result, CheckResult)
        assert result.summary.strip()

    def test_close_is_idempotent(self, connector_factory: ConnectorFactory) -> None:
        async def body(connector: Connector) -> list[asyncio.Task[Any]]:
            await connector.check()  # connected, as after a first operation
            await connector.close()
            await connector.close()
            return await _left_running()

        left = self._use(connector_factory, body)  # and _use closes a third time
        assert not left, f"close() left work running: {left}"


async def _left_running() -> list[asyncio.Task[Any]]:
    """Tasks other than this one still running a moment after a close."""
    for _ in range(3):
        await asyncio.sleep(0)
    here = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not here and not t.done()]


# ----------------------------------------------------------------------------- notifiers

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
            return ended, await _left_running()

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
