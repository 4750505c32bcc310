"""The contract every connector passes (:class:`ConnectorContract`)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

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
from airlock.testing._support import T, left_running, skip_or_fail_under_ci

ConnectorFactory = Callable[[], Awaitable[Connector]]
"""An async callable returning an opened connector; called once per test."""

_NOT_A_SCALAR: Any = [[{"x": None}]]
"""A value no str, number, bool or date field accepts; fields that do accept it are skipped."""


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
                # As it crosses from the connector host to the core, validated again there.
                crossed = json.loads(json.dumps(result.model_dump(mode="json", by_alias=True)))
                assert spec.result.model_validate(crossed) == result, (
                    f"{name}: the result does not survive the trip from the connector host"
                )

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
            return await left_running()

        left = self._use(connector_factory, body)  # and _use closes a third time
        assert not left, f"close() left work running: {left}"
