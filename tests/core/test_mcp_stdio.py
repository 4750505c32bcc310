"""The MCP server's stdio on the loop's pipes (airlock.mcp.stdio), in real subprocesses:
the wire carries only MCP, whatever a tool prints, and a terminal or file is left to the
SDK's own reader."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import anyio
import mcp
from mcp.types import CallToolResult, TextContent

NOISY_SERVER = """
import os, anyio, mcp.types as types
from mcp.server.lowlevel import Server
from airlock.mcp.stdio import stdio_streams

async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[types.Tool(name="noisy", input_schema={"type": "object"})])

async def call_tool(ctx, params):
    # No line end: on the wire, either would spoil the answer that follows it.
    print("stray print", end="", flush=True)  # Python's stdout
    os.write(1, b"stray write to fd 1")       # the descriptor itself
    return types.CallToolResult(content=[types.TextContent(type="text", text="x" * 200_000)])

async def main():
    server = Server("noisy", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_streams() as (read, write):
        await server.run(read, write, server.create_initialization_options())

anyio.run(main)
"""


def test_a_tool_printing_to_stdout_does_not_reach_the_wire(tmp_path: Path) -> None:
    script = tmp_path / "noisy.py"
    script.write_text(NOISY_SERVER)
    params = mcp.StdioServerParameters(command=sys.executable, args=[str(script)])

    async def main() -> list[CallToolResult]:
        with anyio.fail_after(30):
            async with mcp.Client(params) as session:
                return [await session.call_tool("noisy", {}) for _ in range(3)]

    for result in asyncio.run(main()):
        assert not result.is_error
        first = result.content[0]
        assert isinstance(first, TextContent)
        assert first.text == "x" * 200_000  # a large answer arrives whole, three times


def test_a_terminal_or_file_is_left_to_the_sdk(tmp_path: Path) -> None:
    probe = "from airlock.mcp.stdio import _claim; print(_claim())"
    (tmp_path / "in").write_text("")
    with (tmp_path / "in").open() as stdin:
        shown = subprocess.run(
            [sys.executable, "-c", probe], stdin=stdin, capture_output=True, text=True, check=True
        )
    assert shown.stdout.strip() == "None"
