"""The mcp connector against a hostile MCP server (tests/mcp_proxy/hostile_server.py):
what it lists must neither hang the connector nor hand the vault's secrets to agents."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import resource
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.stdio import FORCE_KILL_TIMEOUT, PROCESS_TERMINATION_TIMEOUT
from structlog.testing import capture_logs

from airlock.plugin import Access, ConnectorError, NotFound
from airlock_mcp_proxy import sdk_log
from airlock_mcp_proxy.stdio import FLUSH_TIMEOUT, MAX_LINE
from airlock_mcp_proxy.upstream import LINE_LIMIT, LINES_A_MINUTE, _relay_stderr
from tests.mcp_proxy.conftest import opened
from tests.mcp_proxy.hostile_http import HostileHttpServer

HOSTILE = Path(__file__).with_name("hostile_server.py")
SECRET = "ghp_canary0123456789abcdefSECRET"
STOP_GRACES = FLUSH_TIMEOUT + PROCESS_TERMINATION_TIMEOUT + FORCE_KILL_TIMEOUT
"""The longest a server's stop waits before SIGKILL: to flush, to exit, after SIGTERM."""


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
    settings = {
        **hostile("token_in_listing", TOY_TOKEN="{credentials.token}"),
        "tools": ["lookup"],  # the other one is left out, and the log says which
    }

    async def main() -> tuple[str, dict[str, Any]]:
        async with opened(settings, {"token": SECRET}) as connector:
            spec = connector.listed["lookup"]
            return spec.description, spec.params_schema()

    with capture_logs() as logged:
        description, schema = asyncio.run(main())
    assert SECRET not in description + json.dumps(schema)
    assert "[secret]" in description, "the server did put it there, and it was masked"
    assert "mcp_tool_left_out" in [entry["event"] for entry in logged]
    assert SECRET not in json.dumps(logged)


def test_a_tool_whose_schema_is_too_big_for_an_agent_is_left_out() -> None:
    async def main() -> list[str]:
        async with opened(hostile("huge_schema")) as connector:
            return sorted(connector.listed)

    assert asyncio.run(main()) == ["small"]


@pytest.mark.parametrize("glob", ["delete_repo", "delete_*", "Delete-*"])
def test_write_tools_matches_the_name_the_person_sees_too(glob: str) -> None:
    """The person reads `delete_repo` in `airlock services` and lists it in write_tools:
    the server's own spelling (`Delete-Repo`) must not slip past the override."""
    settings = {**hostile("read_only_delete"), "write_tools": [glob]}

    async def main() -> Access:
        async with opened(settings) as connector:
            return connector.listed["delete_repo"].access

    assert asyncio.run(main()) is Access.WRITE


def test_tools_that_are_one_operation_by_name_are_none_of_them_offered() -> None:
    """`Delete-Repo` (read-only, on the first page), `delete_repo` (a write) and
    `DELETE.REPO` all become the operation `delete_repo`: the person approving it could
    not tell which ran, so none is offered; the tool beside them is, though listed again
    on the second page under the same name."""

    async def main() -> list[str]:
        async with opened(hostile("clashing_names")) as connector:
            with pytest.raises(NotFound, match="no operation"):
                await connector.call("delete_repo", {})
            return sorted(connector.listed)

    with capture_logs() as logged:
        listed = asyncio.run(main())
    assert listed == ["ok"]
    events = [entry["event"] for entry in logged]
    assert events.count("mcp_tools_clash") == 1, "said once, with the operation's name"
    assert events.count("mcp_tool_left_out") == 1, "the third spelling is left out too"


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


def test_a_server_flooding_stderr_gets_a_few_hundred_lines_a_minute_into_the_log() -> None:
    """2,000-character lines as fast as a server can write them added ~40 MiB a second
    to the daemon log: a full disk stops every audit record, so every call. At most
    LINES_A_MINUTE a minute are logged; the rest are counted, said once a minute."""
    lines = "".join(f"line {n} {'z' * 1900}\n" for n in range(2000)) + "a minute on\n" * 3
    # The clock as the relay reads it: at its start, then before each line (2,000 lines
    # in 20 s, then a minute on).
    times = iter([0.0, *(n * 0.01 for n in range(2000))])
    with capture_logs() as logged:
        _relay_stderr(io.StringIO(lines), "files", [], clock=lambda: next(times, 80.0))
    relayed = [e["line"] for e in logged if e["event"] == "mcp_server_stderr"]
    dropped = [e["lines"] for e in logged if e["event"] == "mcp_server_stderr_dropped"]
    assert len(relayed) == LINES_A_MINUTE + 3
    assert relayed[LINES_A_MINUTE - 1].startswith(f"line {LINES_A_MINUTE - 1} ")
    assert relayed[-3:] == ["a minute on"] * 3
    assert dropped == [2000 - LINES_A_MINUTE]


def test_a_line_of_stderr_without_end_is_not_held_whole() -> None:
    """A server writing to stderr without ever ending the line must not fill the
    daemon's memory: the relay keeps the start of each line and drops the rest."""
    read_fd, write_fd = os.pipe()
    chunk = b"x" * (1024 * 1024)

    def write() -> None:
        with os.fdopen(write_fd, "wb") as stream:
            for _ in range(64):
                stream.write(chunk)
            stream.write(SECRET.encode() + b"\nthe next line\n")
            stream.write(b"y" * (LINE_LIMIT - 5) + SECRET.encode() + b"\n")

    writer = threading.Thread(target=write)
    writer.start()
    tracemalloc.start()
    try:
        with capture_logs() as logged:
            _relay_stderr(os.fdopen(read_fd, "r", encoding="utf-8"), "files", [SECRET])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        writer.join()
    relayed = [entry["line"] for entry in logged if entry["event"] == "mcp_server_stderr"]
    assert peak < 8 * 1024 * 1024, f"held {peak} bytes at once"
    at_the_cut = ("y" * (LINE_LIMIT - 5) + "[secret]")[:LINE_LIMIT]
    assert relayed == ["x" * LINE_LIMIT, "the next line", at_the_cut]


def test_what_the_mcp_client_logs_of_a_server_has_its_secrets_masked() -> None:
    """The SDK's own warnings quote the server's words (a tool's name): into the daemon
    log with the running servers' secrets masked and no traceback."""
    owner = object()
    sdk_log.hide(owner, [SECRET])
    try:
        with capture_logs() as logged:
            try:
                raise ValueError(f"input_value='{SECRET}'")
            except ValueError:
                logging.getLogger("mcp.client.session").exception(
                    "dropping tool %r: invalid", f"also-{SECRET}"
                )
    finally:
        sdk_log.forget(owner)
    assert logged == [
        {
            "event": "mcp_client_log",
            "message": "dropping tool 'also-[secret]': invalid",
            "error": "ValueError",
            "log_level": "error",
        }
    ]


def test_a_read_the_server_started_again_lists_as_a_write_is_refused(tmp_path: Path) -> None:
    """The server exits mid-call and the next call starts it again: one that now lists a
    tool as no longer read-only (a newer version) must not run it as the read it was."""
    settings = hostile("flip", STARTS=str(tmp_path / "starts"))

    async def main() -> tuple[Access, str, Access]:
        async with opened(settings) as connector:
            first = connector.listed["peek"].access
            with pytest.raises(ConnectorError, match="the MCP server stopped"):
                await connector.call("crash", {})
            with pytest.raises(ConnectorError) as refused:
                await connector.call("peek", {})
            return first, refused.value.message, connector.listed["peek"].access

    first, message, now = asyncio.run(main())
    assert first is Access.READ
    assert message == "files.peek is listed as a write now, no longer a read"
    assert now is Access.WRITE, "the next call of it is a write, with the person's approval"


def _cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def test_a_line_without_end_on_stdout_costs_the_host_a_bounded_read(tmp_path: Path) -> None:
    """A server answering with 64 MiB on stdout and no newline: the MCP library's reader
    took time quadratic in the line, 21 s of the connector host's CPU (every service it
    hosts slowed) until the call's 20 s timeout. The host reads at most MAX_LINE of it
    (~0.2 s of CPU), then stops the server, and the call fails saying why."""
    written = tmp_path / "written"
    settings = {**hostile("endless_line", WRITTEN=str(written)), "timeout": 20}

    async def main() -> tuple[str, float]:
        async with opened(settings) as connector:
            before = _cpu_seconds()
            with pytest.raises(ConnectorError) as failed:
                await connector.call("lookup", {"key": "x"})
            return failed.value.message, _cpu_seconds() - before

    message, cpu = asyncio.run(main())
    assert message == "files.lookup: the MCP server wrote a line over 16 MiB and was stopped"
    # The pipe took what the host read and 64 KiB more: the server got no further.
    assert int(written.read_text()) <= MAX_LINE + (1 << 20)
    # CPU time, not wall time: a loaded machine makes it little longer.
    assert cpu < 5, f"the host spent {cpu:.1f} s of CPU on one line"


def test_a_call_whose_arguments_the_server_does_not_read_ends_at_its_timeout() -> None:
    """A server that no longer reads its stdin, and a call whose arguments are more than
    the pipe holds (64 KiB): the write counts against the call's timeout, so the call
    ends like a slow answer, the server stopped, within its timeout and the stop's own
    graces (the SDK's writer took the arguments off the clock: the courtesy cancel then
    waited 5 s behind them, and the 502 came ~7.5 s after the timeout)."""
    timeout = 1.0
    settings = {**hostile("deaf"), "timeout": timeout}

    async def main() -> float:
        async with opened(settings) as connector:
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(ConnectorError, match="the MCP server timed out"):
                await connector.call("take", {"text": "x" * (256 * 1024)})
            return loop.time() - start

    assert asyncio.run(main()) < timeout + STOP_GRACES


def test_a_server_that_closes_its_stdin_fails_the_call_and_is_stopped(tmp_path: Path) -> None:
    """Nothing more can reach it: the call fails at once, and the server, still running,
    is stopped (stdin closed, SIGTERM), not left behind."""
    pid_file = tmp_path / "pid"
    settings = hostile("closes_stdin", PID=str(pid_file))

    async def main() -> None:
        async with opened(settings) as connector:
            with pytest.raises(ConnectorError, match="the MCP server stopped"):
                await connector.call("take", {"text": "x"})
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid_file.read_text()), 0)

    asyncio.run(main())


def test_pages_of_tools_left_out_are_not_kept_while_the_listing_goes_on() -> None:
    """Each page's tools are taken as the page arrives: the ones left out (a schema too
    long to offer) were kept until the last page, 16 of ~1.4 MB each here, and pages of
    15 MiB held 3 GB by the 13th."""

    async def main() -> tuple[list[str], int]:
        tracemalloc.start()
        try:
            async with opened(hostile("fat_pages")) as connector:
                names = sorted(connector.listed)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return names, peak

    names, peak = asyncio.run(main())
    assert names == ["small"]
    assert peak < 48 * 1024 * 1024, f"held {peak >> 20} MiB at once"  # 106 before


def test_a_result_is_not_checked_against_a_schema_the_server_declared() -> None:
    """The MCP library checked a result against the tool's declared output schema with
    Python's backtracking ``re`` on the host's event loop: ``^(a+)+$`` against forty a's
    and a "!" would stall every hosted service for years (28 a's: 18 s). The proxy does
    not check results against it (they go to the agent as untrusted content), so the
    library is told there is none: this answer, which does not match it, is passed on
    (twelve a's: were it checked, the check would refuse it at once, not hang here)."""

    async def main() -> Any:
        async with opened(hostile("output_trap", AS="12")) as connector:
            return await connector.call("find", {})

    result = asyncio.run(main())
    assert [block.text for block in result.content] == ["done"]
    assert result.structured == {"q": "a" * 12 + "!"}


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _peak_reset() -> None:
    """Start the process's peak RSS (VmHWM) over from its RSS now."""
    Path("/proc/self/clear_refs").write_text("5")


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize(
    ("mode", "env", "why", "most_mib"),
    [
        ("many_blocks", {"BLOCKS": "540000"}, "over 100,000 JSON objects", 300),
        ("many_arrays", {"ARRAYS": "3500000"}, "over 500,000 JSON values", 200),
    ],
    ids=["content blocks", "empty arrays"],
)
def test_an_answer_of_too_many_json_values_ends_the_session_unparsed(
    mode: str, env: dict[str, str], why: str, most_mib: int
) -> None:
    """540,000 empty text blocks in one answer (15 MiB) cost the host ~2 GB and 15 s as
    a result, a model each, stalling every service it runs; 16 MiB of `[]` (arrays are
    not objects: 5.6 million) 1.8 GB and 6 s to parse. Counted past MAX_OBJECTS or
    MAX_VALUES, the answer is not parsed: the session ends and the call says why."""
    settings = {**hostile(mode, **env), "tools": ["lookup"]}

    async def main() -> tuple[str, float]:
        async with opened(settings) as connector:
            _peak_reset()
            before = _rss_mib()
            with pytest.raises(ConnectorError) as caught:
                await connector.call("lookup", {})
            return caught.value.message, _peak_mib() - before

    message, grown = asyncio.run(main())
    assert f"wrote a message of {why} and was stopped" in message
    assert grown < most_mib, f"the host grew by {grown:.0f} MiB"


def test_a_result_of_too_many_content_blocks_is_an_error_and_the_server_goes_on() -> None:
    """50,000 blocks (fewer objects than MAX_OBJECTS): the call is answered with an
    error saying so, before the blocks become models; the session goes on."""
    settings = {**hostile("many_blocks", BLOCKS="50000"), "tools": ["lookup"]}

    async def main() -> tuple[Any, bool]:
        async with opened(settings) as connector:
            refused = await connector.call("lookup", {})
            upstream = connector._upstream
            return refused, upstream is not None and upstream.running

    refused, running = asyncio.run(main())
    assert refused.is_error
    assert "50,000 content blocks, over Airlock's 10,000" in refused.content[0].text
    assert running


def test_a_server_that_pings_and_never_reads_the_answers_is_stopped(tmp_path: Path) -> None:
    """The MCP library answers a server's pings by itself, each answer echoing the ping's
    id: a server that sent pings with 1 MiB ids and never read its stdin grew the host by
    ~50 MB a second with no call running. Past STDIN_BACKLOG unread the session ends and
    the server is stopped, and a call says why."""
    written = tmp_path / "written"
    settings = hostile("ping_flood", WRITTEN=str(written))

    async def main() -> tuple[float, str, int]:
        before = _rss_mib()
        async with opened(settings) as connector:
            upstream = connector._upstream
            assert upstream is not None
            for _ in range(300):  # until the session ends, or the server sent them all
                if upstream.ended or (written.exists() and written.read_text() == "200"):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # what it would send meanwhile
            grown = _rss_mib() - before
            with pytest.raises(ConnectorError) as failed:
                await connector.call("take", {"text": "x"})
            return grown, failed.value.message, int(written.read_text() or 0)

    grown, message, sent = asyncio.run(main())
    assert message == (
        "files.take: the MCP server left over 4 MiB unread on its stdin and was stopped"
    )
    # Its stdout is read no further: the pipe and the host's reader (at most twice
    # MAX_LINE) hold what it wrote after.
    assert sent < 50, "the server went on sending"
    assert grown < 64, f"the host grew by {grown:.0f} MiB"


def test_what_a_server_leaves_behind_in_its_group_is_stopped_with_it(tmp_path: Path) -> None:
    """A server that started a child and exits as asked when its stdin closes: the child
    (holding the server's environment, the service's secrets among it) was left running
    at every stop, outliving even the daemon."""
    pid_file = tmp_path / "pid"
    settings = hostile("forks", PID=str(pid_file), TOY_TOKEN="{credentials.token}")

    async def main() -> int:
        async with opened(settings, {"token": SECRET}):
            for _ in range(100):
                if pid_file.exists() and pid_file.read_text():
                    break
                await asyncio.sleep(0.02)
            return int(pid_file.read_text())

    child = asyncio.run(main())
    for _ in range(100):  # SIGKILLed: gone once its parent (init) reaps it
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        threading.Event().wait(0.02)
    else:
        os.kill(child, 9)
        raise AssertionError("the server's child outlived the server's stop")


def test_a_line_on_stdout_that_is_not_mcp_is_dropped_and_logged_without_its_words() -> None:
    settings = hostile("stdout_noise", TOY_TOKEN="{credentials.token}")

    async def main() -> list[Any]:
        async with opened(settings, {"token": SECRET}) as connector:
            return [await connector.call("lookup", {"key": "x"}) for _ in range(2)]

    with capture_logs() as logged:
        answers = asyncio.run(main())
    assert [answer.content[0].text for answer in answers] == ["done", "done"]
    dropped = [entry for entry in logged if entry["event"] == "mcp_server_stdout_dropped"]
    assert len(dropped) == 4, "a debug line and a broken message before each answer"
    assert dropped[0] == {
        "event": "mcp_server_stdout_dropped",
        "service": "files",
        "bytes": len(f"token {SECRET}\n"),
        "log_level": "warning",
    }
    assert SECRET not in json.dumps(logged)


@pytest.fixture
def http_server() -> Iterator[HostileHttpServer]:
    server = HostileHttpServer()
    yield server
    server.close()


def _call_over_http(server: HostileHttpServer, answers: list[dict[str, Any]]) -> list[Any]:
    """The connector's calls of `lookup`, one per answer (as `answer` takes it) in turn."""

    async def main() -> list[Any]:
        results = []
        async with opened({"url": server.url, "timeout": 30}) as connector:
            for answer in answers:
                server.answer(**answer)
                results.append(await connector.call("lookup", {}))
        return results

    return asyncio.run(main())


def test_an_http_answer_over_16_mib_is_refused_unread_and_the_session_goes_on(
    http_server: HostileHttpServer,
) -> None:
    """The MCP library read a JSON answer whole, however long, and parsed it; now past
    16 MiB the call fails saying so, and the next call is answered."""
    _peak_reset()
    before = _rss_mib()
    huge, fine = _call_over_http(http_server, [{"text": "x", "repeat": 64 << 20}, {}])
    grown = _peak_mib() - before
    assert huge.is_error
    assert "the server's answer is over 16 MiB" in huge.content[0].text
    assert [block.text for block in fine.content] == ["ok"]
    assert grown < 64, f"the host grew by {grown:.0f} MiB for a 64 MiB answer"


def test_an_http_answer_of_too_many_objects_or_compressed_is_refused(
    http_server: HostileHttpServer,
) -> None:
    crowded, blocks, packed, fine = _call_over_http(
        http_server,
        [{"blocks": 540_000, "text": ""}, {"blocks": 50_000, "text": ""}, {"gzip": True}, {}],
    )
    assert crowded.is_error
    assert "over 100,000 JSON objects" in crowded.content[0].text
    assert blocks.is_error
    assert "50,000 content blocks, over Airlock's 10,000" in blocks.content[0].text
    assert packed.is_error
    assert "compressed" in packed.content[0].text
    assert [block.text for block in fine.content] == ["ok"]
