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
    assert "alk_" not in out + result.stderr
    home = Path(re.search(r"home: (\S+)", out).group(1))  # type: ignore[union-attr]
    assert not home.exists()
    leftover = subprocess.run(["pgrep", "-f", f"{home}"], capture_output=True, check=False)
    assert leftover.stdout == b""
