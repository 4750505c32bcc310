"""The tree keeps the shape docs/architecture.md describes.

No module grows past what a reader takes in at once; what a write approval is bound to
(the operation hash) has exactly one definition, so approvals, the gateway and the
``scope`` policy cannot drift apart; pydantic's errors become a message in one helper and
HTTP statuses map to errors in one table; policies see typed configuration.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(ROOT.glob("airlock-*/src/**/*.py"))
LIMIT = 400


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_sources_are_found() -> None:
    names = {_name(path) for path in SOURCES}
    assert "airlock-core/src/airlock/state/store.py" in names
    assert "airlock-mail/src/airlock_mail/imap.py" in names


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_no_module_is_over_the_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= LIMIT, f"{_name(path)} has {lines} lines: split it by responsibility"


def _definitions(name: str) -> list[str]:
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [
            _name(path)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        ]
    return found


@pytest.mark.parametrize(
    "name", ["canonical_params", "canonical_operation_params", "operation_hash"]
)
def test_operation_hashing_is_defined_once(name: str) -> None:
    assert _definitions(name) == ["airlock-core/src/airlock/framework/operations.py"]


def test_every_user_of_operation_hashing_gets_the_one_definition() -> None:
    from airlock.default_plugins import _policies
    from airlock.framework import operations, policies
    from airlock.gateway import gateway
    from airlock.security import approvals

    assert policies.operation_hash is operations.operation_hash
    assert _policies.operation_hash is operations.operation_hash
    assert gateway.operation_hash is operations.operation_hash
    assert approvals.operation_hash is operations.operation_hash
    assert approvals.canonical_operation_params is operations.canonical_operation_params


def _trees() -> list[tuple[str, ast.Module]]:
    return [(_name(path), ast.parse(path.read_text(encoding="utf-8"))) for path in SOURCES]


def test_pydantic_errors_become_a_message_in_one_place() -> None:
    """``first_problem`` (airlock.models) turns a ValidationError into one message naming
    the field; reading ``exc.errors()`` anywhere else writes that helper again."""
    readers = [
        name
        for name, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "errors"
        and not node.args
        and not node.keywords
    ]
    assert sorted(set(readers)) == ["airlock-core/src/airlock/models.py"]


def test_http_statuses_map_to_errors_in_one_table() -> None:
    """``errors.HTTP_ERRORS`` is the one table from HTTP status to error; a second dict
    keyed by error statuses would drift from it."""
    tables = [
        f"{name}:{node.lineno}"
        for name, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        and len(node.keys) >= 3
        and all(
            isinstance(key, ast.Constant) and isinstance(key.value, int) and 400 <= key.value < 600
            for key in node.keys
        )
    ]
    assert [table.split(":")[0] for table in tables] == ["airlock-core/src/airlock/errors.py"]


def test_the_policy_context_is_typed() -> None:
    import typing

    from airlock.framework.policies import PolicyContext, SessionFacts, Stage
    from airlock.models import Access
    from airlock.settings.config import ServicePermissions

    hints = typing.get_type_hints(PolicyContext)
    assert hints["stage"] is Stage
    assert hints["access"] is Access
    assert hints["permissions"] is ServicePermissions
    assert hints["session"] == SessionFacts | None
