"""A test that cannot run skips locally and fails under CI (``CI=true`` or ``CI=1``), in
the contract kit plugin authors use as in the project's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

UNOBSERVED_CONSOLE = '''
import io
import pytest
from airlock.default_plugins._console_notifier import ConsoleNotifier
from airlock.models import NoCredentials, NoSettings
from airlock.testing import NotifierContract


class TestUnobserved(NotifierContract):
    """A notifier test that forgot delivered(): what the person saw is never checked."""

    notifier_class = ConsoleNotifier
    receives_replies = False

    @pytest.fixture
    def notifier_factory(self):
        async def make():
            return ConsoleNotifier(NoSettings(), NoCredentials(), stream=io.StringIO())

        return make
'''


def outcome(tmp_path: Path, ci: str | None) -> str:
    test = tmp_path / "test_unobserved.py"
    test.write_text(UNOBSERVED_CONSOLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-k",
            "sees_the_code",
            str(test),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return run.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_a_contract_test_that_cannot_observe_fails_under_ci(tmp_path: Path, ci: str) -> None:
    last = outcome(tmp_path, ci)
    assert "1 failed" in last, last


def test_it_skips_outside_ci(tmp_path: Path) -> None:
    assert "1 skipped" in outcome(tmp_path, None)
    assert "1 skipped" in outcome(tmp_path, "0")
