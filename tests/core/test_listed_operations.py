"""Operations a connector lists when it opens (an MCP server's tools): served, validated
against their JSON Schema before anyone is asked, and a listed write still needs its own
approval of the exact call. In-process runtime with a fake clock (tests/core/gateway_fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gateway_fixtures import NOTES, Phone, Toolbox
from test_approvals import ME, approved, ask, audit_events, run

from airlock.api import OperationRef
from airlock.common.clock import FakeClock
from airlock.daemon.runtime import Runtime
from airlock.errors import ApprovalRequired, ConnectorError, Forbidden, InvalidInput
from airlock.framework.connectors import Access, Done, listed_operation
from airlock.json_schema import check_json

TOOLS = {"services": {"tools": {"connector": "toolbox"}}}


async def session(runtime: Runtime, totp: Any, clock: FakeClock, **body: Any) -> str:
    created = await ask(runtime, services=["tools"], **body)
    grant = await approved(runtime, totp, clock, created)
    return grant.token


def test_listed_operations_are_served_with_their_schema(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        listings = Toolbox.listings
        listing = await runtime.service_list()
        (tools,) = [s for s in listing.services if s.name == "tools"]
        ops = {op.name: op for op in tools.operations}
        assert sorted(ops) == ["add", "stash"]
        assert ops["add"].access is Access.READ
        assert ops["add"].description == "Add two integers."
        assert ops["add"].params_schema["required"] == ["a", "b"]
        assert ops["stash"].access is Access.WRITE
        await runtime.service_list()
        assert Toolbox.listings == listings + 1, "listed once, kept while the daemon runs"

    run(tmp_path, scenario, **TOOLS)


def test_a_listed_read_runs_in_a_session(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        token = await session(runtime, totp, clock)
        out = await runtime.gateway.run(token, ME, "tools", "add", {"a": 2, "b": 3})
        assert out.model_dump(mode="json", by_alias=True) == {"text": "5"}
        with pytest.raises(InvalidInput) as caught:
            await runtime.gateway.run(token, ME, "tools", "add", {"a": "two", "b": 3})
        assert caught.value.field == "params.a"
        with pytest.raises(InvalidInput) as caught:
            await runtime.gateway.run(token, ME, "tools", "add", {"a": 2, "b": 3, "c": 1})
        assert caught.value.field == "params.c"

    run(tmp_path, scenario, **TOOLS)


def test_a_listed_write_runs_once_with_its_own_approval(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        token = await session(runtime, totp, clock, access="write")
        with pytest.raises(ApprovalRequired):
            await runtime.gateway.run(token, ME, "tools", "stash", {"text": "a"})
        assert "stash" not in NOTES
        ref = OperationRef(service="tools", name="stash", params={"text": "a"})
        created = await ask(runtime, services=["tools"], operation=ref)
        assert "stash" in phone.sent[-1].as_text()
        clock.advance(30)  # the next code: the session's one is used
        grant = await approved(runtime, totp, clock, created)
        with pytest.raises(ApprovalRequired):
            await runtime.gateway.run(grant.token, ME, "tools", "stash", {"text": "b"})
        await runtime.gateway.run(grant.token, ME, "tools", "stash", {"text": "a"})
        assert NOTES["stash"] == "a"
        with pytest.raises(ApprovalRequired):
            await runtime.gateway.run(grant.token, ME, "tools", "stash", {"text": "a"})

    run(tmp_path, scenario, **TOOLS)


def test_an_operation_listed_again_as_a_write_does_not_run_in_a_read_session(
    tmp_path: Path,
) -> None:
    """The daemon keeps what a service listed; the server, started again later (a new
    version fetched by npx, say), now lists `add` as a write: the read session that ran
    it before must not run it now without the person's approval of the call."""

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        token = await session(runtime, totp, clock)
        await runtime.gateway.run(token, ME, "tools", "add", {"a": 2, "b": 3})
        await runtime.gateway.host.close_idle(keep=set(), idle_seconds=0)
        Toolbox.add_access = Access.WRITE
        try:
            with pytest.raises(ConnectorError, match="no longer a read"):
                await runtime.gateway.run(token, ME, "tools", "add", {"a": 2, "b": 3})
            with pytest.raises(Forbidden, match="read-only"):
                await runtime.gateway.run(token, ME, "tools", "add", {"a": 2, "b": 3})
            listing = await runtime.service_list()
        finally:
            Toolbox.add_access = Access.READ
        assert "add" not in NOTES, "nothing ran as a write"
        (tools,) = [s for s in listing.services if s.name == "tools"]
        assert {op.name: op.access for op in tools.operations}["add"] is Access.WRITE

    run(tmp_path, scenario, **TOOLS)


def test_schema_invalid_params_are_refused_before_anyone_is_asked(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        for params, field in [({}, "params.text"), ({"text": 7}, "params.text")]:
            ref = OperationRef(service="tools", name="stash", params=params)
            with pytest.raises(InvalidInput) as caught:
                await ask(runtime, services=["tools"], operation=ref)
            assert caught.value.field == field
        assert phone.sent == []
        assert runtime.approvals.pending() == []
        assert not [e for e in audit_events(runtime) if e["event"] == "request_created"]

    run(tmp_path, scenario, **TOOLS)


def test_a_listed_operation_needs_a_valid_name_and_schema() -> None:
    def make(name: str, schema: dict[str, Any]) -> Any:
        return listed_operation(
            name=name,
            access=Access.READ,
            input_schema=schema,
            result=Toolbox.Settings,
            description="x",
        )

    with pytest.raises(ValueError, match="snake_case"):
        make("Read-File", {"type": "object"})
    with pytest.raises(ValueError, match="JSON object"):
        make("read_file", {"type": "string"})
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        make("read_file", {"type": "object", "properties": {"a": {"type": 5}}})


def test_schema_errors_name_the_field_and_not_the_value() -> None:
    schema = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
    with pytest.raises(InvalidInput) as caught:
        check_json(schema, {"path": ["s3cr3t-value"]}, within="params")
    assert caught.value.field == "params.path"
    assert "s3cr3t" not in caught.value.message


def test_a_service_that_cannot_open_is_listed_without_operations_and_not_retried_at_once(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        Toolbox.broken = True
        try:
            opens = Toolbox.opens
            for _ in range(3):
                listing = await runtime.service_list()
                (tools,) = [s for s in listing.services if s.name == "tools"]
                assert tools.operations == []
            assert Toolbox.opens == opens + 1, "clients polling the list start it once"
            clock.advance(61)
            Toolbox.broken = False
            listing = await runtime.service_list()
            (tools,) = [s for s in listing.services if s.name == "tools"]
            assert {op.name for op in tools.operations} == {"add", "stash"}
        finally:
            Toolbox.broken = False

    run(tmp_path, scenario, **TOOLS)


def test_a_schemas_regular_expressions_are_left_to_the_service() -> None:
    """A listed schema's ``pattern``s run on the agent's text, in the daemon; Python's
    regular expressions backtrack (``^(a+)+$`` on forty a's and a "!" takes years), so
    an MCP server naming one could stall every approval. They are the service's to
    check; the rest of the schema is still checked here."""
    spec = listed_operation(
        name="find",
        access=Access.READ,
        input_schema={
            "type": "object",
            "properties": {
                "q": {"type": "string", "pattern": "^(a+)+$"},
                "pattern": {"type": "string"},  # a parameter called so keeps its schema
                "tags": {
                    "type": "object",
                    "patternProperties": {"^(b+)+$": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
            "required": ["q"],
            "additionalProperties": False,
        },
        result=Done,
        description="Find things.",
    )
    trap = "a" * 40 + "!"
    spec.parse_params({"q": trap, "pattern": "*.txt", "tags": {"b" * 40 + "!": "x"}})
    with pytest.raises(InvalidInput, match=r"params\.pattern: must be of type string"):
        spec.parse_params({"q": trap, "pattern": 7}, within="params")
    with pytest.raises(InvalidInput, match=r"params\.other"):
        spec.parse_params({"q": trap, "other": 1}, within="params")
    assert spec.params_schema()["properties"]["q"]["pattern"] == "^(a+)+$", "shown as listed"


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("dialect", [None, "http://json-schema.org/draft-07/schema#"])
def test_a_schema_whose_work_doubles_with_each_level_is_cut_short(dialect: str | None) -> None:
    """``oneOf`` two ways to read a nested array, each referring back: every level of
    the agent's value doubles the daemon's work (forty brackets: years). A ``$schema``
    inside must not switch to a validator that does not count."""
    branch: dict[str, Any] = {"type": "array", "items": {"$ref": "#/$defs/n"}}
    if dialect is not None:
        branch["$schema"] = dialect
    schema = {
        "type": "object",
        "$defs": {"n": {"oneOf": [branch, {**branch, "minItems": 0}]}},
        "properties": {"q": {"$ref": "#/$defs/n"}},
    }
    spec = listed_operation(
        name="nest", access=Access.READ, input_schema=schema, result=Done, description="N."
    )
    with pytest.raises(InvalidInput, match="too much to check") as caught:
        spec.parse_params({"q": nested(40)}, within="params")
    assert caught.value.field == "params"
    with pytest.raises(InvalidInput, match=r"params\.q: not allowed by the schema \(oneOf\)"):
        spec.parse_params({"q": nested(3)}, within="params")


def test_unique_items_are_checked_in_one_pass() -> None:
    """jsonschema compares every pair of objects for ``uniqueItems``: the 100,000 small
    objects of a 1 MiB body took the daemon hours. Equal still means JSON's equal."""
    spec = listed_operation(
        name="tag",
        access=Access.READ,
        input_schema={
            "type": "object",
            "properties": {"t": {"type": "array", "uniqueItems": True}},
        },
        result=Done,
        description="Tag.",
    )
    spec.parse_params({"t": [{"n": n} for n in range(100_000)]})
    spec.parse_params({"t": [1, True, "1", [1], {"a": 1}, {"a": True}]})
    for same in ([{"a": 1, "b": [2]}, {"b": [2.0], "a": 1.0}], [[], []], [False, False]):
        with pytest.raises(InvalidInput, match=r"params\.t: not allowed by the schema"):
            spec.parse_params({"t": same}, within="params")
