"""The program copy under /opt/airlock/venv on a machine without uv (root; CI runs it).

``airlock service install --isolated`` copies the program where the service user can run
it when the current interpreter lives in a private home directory (pyenv in root's home,
as here). Where uv is missing the copy is made with the system Python's ``venv`` and
``pip``, the ``airlock*`` distributions from ``--wheels DIR``. This runs that step for
real, with a PATH that holds no uv, and checks the result as another user.

It uses the real /opt/airlock: run it under ``flock /work/wt/isolated.lock`` beside the
other isolated-mode tests; it refuses to start when /opt/airlock exists and removes it
after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_harness import OTHER_USER, machine_lock, needs_root
from isolated_harness import build_wheels

from airlock.service.layout import PROGRAM_DIR, VENV_DIR
from airlock.service.program import airlock_distributions, runs_as

NO_UV_PATH = "/usr/local/bin:/usr/bin:/bin"
BUILD = (
    "import sys\n"
    "from pathlib import Path\n"
    "from airlock.service.program import ensure_program\n"
    "print(ensure_program(sys.argv[1], Path(sys.argv[2]), print))\n"
)


def test_the_copy_is_made_with_pip_from_local_wheels_where_there_is_no_uv(
    other_uid: int, tmp_path: Path
) -> None:
    needs_root()
    with machine_lock():  # /opt/airlock is test_isolated.py's too
        _copy_with_pip(tmp_path)


def _copy_with_pip(tmp_path: Path) -> None:
    if PROGRAM_DIR.exists():
        pytest.fail(f"{PROGRAM_DIR} already exists: not touching it")
    # What makes this machine one without uv: none on PATH, none beside the interpreter.
    assert shutil.which("uv", path=NO_UV_PATH) is None, "uv is installed system-wide"
    assert not (Path(sys.executable).parent / "uv").exists()
    wheels = build_wheels(tmp_path / "wheels")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRLOCK_", "UV_"))}
    env["PATH"] = NO_UV_PATH
    try:
        done = subprocess.run(
            [sys.executable, "-c", BUILD, OTHER_USER, str(wheels)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
            cwd="/",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert f"installing a copy of airlock into {VENV_DIR}" in done.stdout
        assert lines[-1] == str(VENV_DIR / "bin" / "python")
        # Made by `python -m venv` and pip (uv's venvs have no pip of their own).
        assert (VENV_DIR / "bin" / "pip").exists()
        assert "uv" not in (VENV_DIR / "pyvenv.cfg").read_text()
        # The other user runs the copy with the same airlock distributions...
        wanted = airlock_distributions()
        assert runs_as(OTHER_USER, VENV_DIR / "bin" / "python", wanted) is None
        # ...and those came from the local wheels, not from an index.
        origins = {}
        for direct_url in VENV_DIR.glob(
            "lib/python*/site-packages/airlock*.dist-info/direct_url.json"
        ):
            origins[direct_url.parent.name] = json.loads(direct_url.read_text())["url"]
        assert len(origins) == len(wanted), origins
        assert all(url.startswith(wheels.as_uri()) for url in origins.values()), origins
    finally:
        shutil.rmtree(PROGRAM_DIR, ignore_errors=True)
    assert not PROGRAM_DIR.exists()
