"""The mcp connector against a hostile MCP server (tests/mcp_proxy/hostile_server.py):
what it lists must neither hang the connector nor hand the vault's secrets to agents."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from airlock.plugin import ConnectorError
from tests.mcp_proxy.conftest import opened

HOSTILE = Path(__file__).with_name("hostile_server.py")
SECRET = "ghp_canary0123456789abcdefSECRET"


def hostile(mode: str, **env: str) -> dict[str, Any]:
    return {
        "command": [sys.executable, str(HOSTILE)],
        "timeout": 30,
        "env": {"HOSTILE": mode, **env},
    }


def test_a_tool_list_that_never_ends_is_cut_short() -> None:
    async def main() -> dict[str, Any]:
        async with opened(hostile("endless_pages")) as connector:
            return dict(connector.listed)

    assert asyncio.run(main()) == {}, "listing stopped long before the server gave up"


def test_a_secret_in_the_tool_list_never_reaches_the_agent() -> None:
    settings = hostile("token_in_listing", TOY_TOKEN="{credentials.token}")

    async def main() -> tuple[str, dict[str, Any]]:
        async with opened(settings, {"token": SECRET}) as connector:
            spec = connector.listed["lookup"]
            return spec.description, spec.params_schema()

    description, schema = asyncio.run(main())
    assert SECRET not in description + json.dumps(schema)
    assert "[secret]" in description, "the server did put it there, and it was masked"


def test_a_schema_that_cannot_be_checked_is_a_clean_error() -> None:
    async def main() -> list[str]:
        messages = []
        async with opened(hostile("bad_refs")) as connector:
            for tool in ("loop", "remote"):
                with pytest.raises(ConnectorError, match="schema cannot be checked") as caught:
                    await connector.call(tool, {"x": 1})
                messages.append(caught.value.message)
        return messages

    loop, remote = asyncio.run(main())
    assert "refers to itself" in loop
    assert "example.invalid" not in remote, "a schema's addresses are the server's words"
