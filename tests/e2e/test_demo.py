"""`airlock demo` runs the whole product and leaves nothing behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from airlock.demo.sample_mail import SIGN_IN_CODE


def test_the_demo_shows_the_whole_story_and_cleans_up() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airlock", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "approved: session ses_" in out
    assert "[code redacted]" in out
    assert SIGN_IN_CODE not in out
    assert "refused (forbidden)" in out
    assert "refused (invalid_code)" in out
    assert "airlock audit verify: OK" in out
    assert re.search(r"web dashboard showed all this at http://127\.0\.0\.1:\d+/", out)
    assert "airlock demo --keep" in out
    assert "alk_" not in out + result.stderr
    home = Path(re.search(r"home: (\S+)", out).group(1))  # type: ignore[union-attr]
    assert not home.exists()
    leftover = subprocess.run(["pgrep", "-f", f"{home}"], capture_output=True, check=False)
    assert leftover.stdout == b""


def test_the_demo_points_at_its_dashboard_and_keep_leaves_it_running_until_ctrl_c() -> None:
    import os
    import signal
    import time

    import httpx

    demo = subprocess.Popen(
        [sys.executable, "-m", "airlock", "demo", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while not any(line.startswith("Dashboard: ") for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = demo.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        out = "".join(lines)
        url = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+/)", out)
        assert url, out
        page = httpx.get(url.group(1) + "login")
        assert page.status_code == 200
        assert "Type the current code" in page.text
        home = Path(re.search(r"home: (\S+)", out).group(1))  # type: ignore[union-attr]
        assert home.exists()
    finally:
        os.kill(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, rest
    assert "The demo home was deleted" in rest
    assert not home.exists()
    try:
        httpx.get(url.group(1) + "login", timeout=2)
    except httpx.ConnectError:
        pass  # the dashboard went away with the daemon
    else:
        raise AssertionError("the demo dashboard still answers after Ctrl-C")
    leftover = subprocess.run(["pgrep", "-f", f"{home}"], capture_output=True, check=False)
    assert leftover.stdout == b""
