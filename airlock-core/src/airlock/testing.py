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
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, TypeVar

import pytest
from pydantic import BaseModel, ValidationError

from airlock.connectors import OPERATION_NAME, Access, CheckResult, Connector, OperationSpec
from airlock.errors import InvalidInput, NotFound

__all__ = ["ConnectorContract", "ConnectorFactory", "run"]

T = TypeVar("T")

ConnectorFactory = Callable[[], Awaitable[Connector]]
"""An async callable returning an opened connector; called once per test."""

_NOT_A_SCALAR: Any = [[{"x": None}]]
"""A value no str, number, bool or date field accepts; fields that do accept it are skipped."""


def run(coro: Awaitable[T]) -> T:
    """Run *coro* to completion on a fresh event loop (no pytest-asyncio needed)."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())


# ---------------------------------------------------------------------------- connectors


class ConnectorContract:
    """The behaviour core relies on from every :class:`~airlock.connectors.Connector`.

    A subclass sets :attr:`connector_class` and :attr:`read_params`, overrides the
    :meth:`connector_factory` fixture, and may override :meth:`snapshot`.
    """

    connector_class: ClassVar[type[Connector]]
    read_params: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    """Valid sample params for every read operation, so none goes untested."""

    @pytest.fixture
    def connector_factory(self) -> ConnectorFactory:
        """Override: return an async callable that makes an opened connector."""
        pytest.fail(f"{type(self).__name__} must override the connector_factory fixture")

    def snapshot(self) -> object | None:
        """Override: the observable state of the service (None: not observable)."""
        return None

    # ------------------------------------------------------------------ helpers

    def _operations(self, access: Access | None = None) -> dict[str, OperationSpec]:
        ops = self.connector_class.operations
        return {n: s for n, s in ops.items() if access is None or s.access is access}

    def _use(self, factory: ConnectorFactory, body: Callable[[Connector], Awaitable[T]]) -> T:
        """Open a connector, run *body* with it, and close it, on one event loop."""

        async def main() -> T:
            connector = await factory()
            try:
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

    def test_operations_are_declared_completely(self) -> None:
        ops = self._operations()
        assert ops, "declare operations with @operation"
        for name, spec in ops.items():
            assert spec.name == name
            assert OPERATION_NAME.match(name), f"{name!r} is not snake_case"
            assert spec.description.strip(), f"{name}: needs a description"
            assert "\n" not in spec.description, f"{name}: the description is one line"
            assert isinstance(spec.access, Access), name
            assert issubclass(spec.params, BaseModel), name
            assert issubclass(spec.result, BaseModel), name
            assert spec.params.model_config.get("extra") == "forbid", (
                f"{name}: params model must forbid unknown fields "
                "(subclass airlock.connectors.Params)"
            )
            assert inspect.iscoroutinefunction(getattr(self.connector_class, spec.method)), name
        methods = [spec.method for spec in ops.values()]
        assert len(set(methods)) == len(methods), "two operations share one method"

    def test_operation_schemas_are_json(self) -> None:
        for spec in self._operations().values():
            json.dumps(spec.params_schema())
            json.dumps(spec.result_schema())

    def test_every_read_operation_has_sample_params(self) -> None:
        reads = set(self._operations(Access.READ))
        assert set(self.read_params) == reads, (
            f"read_params must cover exactly the read operations {sorted(reads)}; "
            f"got {sorted(self.read_params)}"
        )
        for name, params in self.read_params.items():
            self.connector_class.operations[name].params.model_validate(dict(params))

    # ------------------------------------------------------------------ validation

    def test_an_unknown_operation_is_not_found(self, connector_factory: ConnectorFactory) -> None:
        async def body(connector: Connector) -> None:
            with pytest.raises(NotFound):
                await connector.call("no_such_operation", {})

        self._use(connector_factory, body)

    def test_an_unknown_parameter_is_invalid_input(
        self, connector_factory: ConnectorFactory
    ) -> None:
        calls = [
            (name, {**self.read_params.get(name, {}), "no_such_parameter": 1})
            for name in self._operations()
        ]
        raised = self._expect_invalid(connector_factory, calls)
        for (name, _), exc in zip(calls, raised, strict=True):
            if name in self.read_params:
                assert exc.field == "no_such_parameter", (name, exc.field)

    def test_a_wrong_type_is_invalid_input(self, connector_factory: ConnectorFactory) -> None:
        calls: list[tuple[str, dict[str, Any]]] = []
        for name, spec in self._operations().items():
            for field in spec.params.model_fields:
                params = {**self.read_params.get(name, {}), field: _NOT_A_SCALAR}
                try:
                    spec.params.model_validate(params)
                except ValidationError:
                    calls.append((name, params))  # only values the model refuses
        self._expect_invalid(connector_factory, calls)

    # ------------------------------------------------------------------ behaviour

    def test_read_results_are_json_and_round_trip(
        self, connector_factory: ConnectorFactory
    ) -> None:
        async def body(connector: Connector) -> None:
            for name, params in self.read_params.items():
                spec = connector.spec(name)
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
            pytest.skip("snapshot() not implemented: the service's state is not observable")

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
        async def body(connector: Connector) -> None:
            await connector.close()
            await connector.close()

        self._use(connector_factory, body)  # and _use closes a third time
