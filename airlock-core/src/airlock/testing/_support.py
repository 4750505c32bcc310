"""What the contract suites share: CI detection, skipping, running a coroutine, and
whether a process is closed to its own user."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable
from typing import Any, NoReturn, TypeVar

import pytest

T = TypeVar("T")


def under_ci() -> bool:
    """Whether this is a CI run: ``CI`` set to ``true`` or ``1`` (as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true")


def skip_or_fail_under_ci(reason: str) -> NoReturn:
    """Skip a test that cannot run here; under CI fail instead, so nothing that should
    have been checked passes unseen (a missing server, tool, privilege or hook)."""
    if under_ci():
        pytest.fail(f"{reason} (CI is set: this test must run)", pytrace=False)
    pytest.skip(reason)


def dumpable_after(code: str, *args: str, stdin: str | None = None) -> bool:
    """Whether a fresh Python process that ran *code* (with *args* as ``sys.argv[1:]`` and
    *stdin* on its standard input) is still dumpable: a process of its own user (an agent
    running as the person) may attach to it and read the secrets it holds. A plugin that
    holds a secret calls ``refuse_ptrace`` first; this checks it did."""
    probe = code + "\nimport ctypes\nprint(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1] != "0"  # PR_GET_DUMPABLE


def run(coro: Awaitable[T]) -> T:
    """Run *coro* to completion on a fresh event loop (no pytest-asyncio needed)."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())


# ---------------------------------------------------------------------------- connectors


async def left_running() -> list[asyncio.Task[Any]]:
    """Tasks other than this one still running a moment after a close."""
    for _ in range(3):
        await asyncio.sleep(0)
    here = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not here and not t.done()]
