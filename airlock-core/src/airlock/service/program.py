"""Make sure the service user can run Airlock.

The program root runs may live where the service user cannot read it (here: Python in
root's 0700 home directory). Checked by running, as that user, an interpreter that
imports ``airlock`` and reports the versions of the installed ``airlock*``
distributions. When the current one fails, a copy goes to ``/opt/airlock/venv`` with the
same distributions at the same versions: the ``airlock*`` ones from local wheels
(``--wheels DIR``) or the index, every dependency pinned to the version installed here.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from airlock.errors import AirlockError
from airlock.service.layout import PROGRAM_DIR, VENV_DIR
from airlock.service.root_owned import changeable_above, not_roots_own

_PROBE = (
    "import importlib.metadata as m, json, sys\n"
    "import airlock.cli, airlock.daemon.server\n"
    "print(json.dumps({d: m.version(d) for d in sys.argv[1:]}))\n"
)
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"


class ProgramError(AirlockError):
    code = "program_unusable"


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def airlock_distributions() -> dict[str, str]:
    """The installed ``airlock*`` distributions and their versions."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = _normal(dist.metadata["Name"] or "")
        if name.startswith("airlock") and name != "airlock-workspace":
            found[name] = dist.version
    return found


def _all_distributions() -> dict[str, str]:
    return {_normal(d.metadata["Name"] or ""): d.version for d in metadata.distributions()}


def runs_as(user: str, python: Path, expected: dict[str, str]) -> str | None:
    """None when *user* can run *python* with *expected* installed; else what is wrong."""
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE, *sorted(expected)],
            user=user,
            group=user,
            extra_groups=[],
            cwd="/",
            env={"PATH": CLEAN_PATH, "LANG": "C.UTF-8"},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    except OSError as exc:
        return f"{python}: {exc.strerror}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["exit status " + str(done.returncode)])[-1]
        return f"{python}: {last}"
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"{python}: unexpected answer {done.stdout[-200:]!r}"
    if found != expected:
        return f"{python}: has {found}, expected {expected}"
    return None


def _base_interpreters() -> list[Path]:
    """Interpreters of this Python version, the current one's base first."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        Path(sys.base_prefix) / "bin" / version,
        Path("/usr/local/bin") / version,
        Path("/usr/bin") / version,
    ]
    return [p for p in candidates if p.exists()]


def _usable_base(user: str) -> Path:
    for python in _base_interpreters():
        try:
            done = subprocess.run(
                [str(python), "-c", "import venv, ssl, sqlite3"],
                user=user,
                group=user,
                extra_groups=[],
                cwd="/",
                env={"PATH": CLEAN_PATH},
                capture_output=True,
                check=False,
                timeout=60,
            )
        except OSError:  # not even executable for that user
            continue
        if done.returncode == 0:
            return python
    raise ProgramError(
        f"no Python {sys.version_info.major}.{sys.version_info.minor} that user {user!r} can run",
        hint=f"install python{sys.version_info.major}.{sys.version_info.minor} "
        "system-wide (e.g. apt install python3), then install again",
    )


def _wheel_files(wheels: Path, wanted: dict[str, str]) -> list[Path]:
    files: list[Path] = []
    for name, version in sorted(wanted.items()):
        stem = f"{name.replace('-', '_')}-{version}-"
        matches = sorted(p for p in wheels.glob("*.whl") if p.name.lower().startswith(stem))
        if not matches:
            raise ProgramError(
                f"no wheel of {name} {version} in {wheels}",
                hint="build them with `uv build --all-packages --wheel -o DIR`",
            )
        files.append(matches[-1])
    return files


def _uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


def build_venv(user: str, wheels: Path | None, say: Callable[[str], None]) -> Path:
    """A fresh ``/opt/airlock/venv`` with this environment's airlock distributions."""
    wanted = airlock_distributions()
    base = _usable_base(user)
    requirements: list[str] = (
        [str(p) for p in _wheel_files(wheels, wanted)]
        if wheels is not None
        else [f"{name}=={version}" for name, version in sorted(wanted.items())]
    )
    PROGRAM_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    not_ours = changeable_above(PROGRAM_DIR)
    if not_ours is not None:
        raise ProgramError(
            f"{not_ours} can be changed by a user other than root, who could then change "
            "the program the daemons run",
            hint=f"move {PROGRAM_DIR} away, or make it root's own (chown root, chmod go-w)",
        )
    PROGRAM_DIR.chmod(stat.S_IMODE(PROGRAM_DIR.stat().st_mode) | 0o111)  # reachable by all
    shutil.rmtree(VENV_DIR, ignore_errors=True)
    say(f"installing a copy of airlock into {VENV_DIR} (Python {base})")
    with tempfile.TemporaryDirectory(prefix="airlock-install-") as tmp:
        pins = Path(tmp) / "constraints.txt"
        pins.write_text(
            "".join(
                f"{name}=={version}\n"
                for name, version in sorted(_all_distributions().items())
                if name not in wanted
            )
        )
        uv = _uv()
        if uv is not None:
            venv_python = str(VENV_DIR / "bin" / "python")
            steps = [
                [uv, "venv", "--quiet", "--python", str(base), str(VENV_DIR)],
                [uv, "pip", "install", "--quiet", "--python", venv_python, "-c", str(pins)],
            ]
            steps[1].extend(requirements)
        else:
            pip = [str(VENV_DIR / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            steps = [
                [str(base), "-m", "venv", str(VENV_DIR)],
                [*pip, "--constraint", str(pins), *requirements],
            ]
        for step in steps:
            done = subprocess.run(
                step, capture_output=True, text=True, check=False, cwd=tmp, timeout=900
            )
            if done.returncode != 0:
                raise ProgramError(
                    f"{' '.join(step[:3])} failed: {done.stderr.strip()[-1500:]}",
                    hint="with no index reachable, pass --wheels DIR with every wheel",
                )
    _open_to_everyone(VENV_DIR)
    return VENV_DIR / "bin" / "python"


def _open_to_everyone(root: Path) -> None:
    """The program holds no secret: readable (not writable) by every user, so agents run
    the same ``airlock`` client."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        wanted = (mode | 0o444 | (0o111 if path.is_dir() or mode & 0o100 else 0)) & ~0o022
        if wanted != mode:
            os.chmod(path, wanted)


def ensure_program(user: str, wheels: Path | None, say: Callable[[str], None]) -> Path:
    """An interpreter *user* can run with this environment's airlock distributions."""
    wanted = airlock_distributions()
    current = Path(sys.executable)
    problem = runs_as(user, current, wanted) or not_roots_own(current)
    if problem is None:
        say(f"user {user} can run {current}: no copy needed")
        return current
    copy = VENV_DIR / "bin" / "python"
    if copy.exists() and (runs_as(user, copy, wanted) or not_roots_own(copy)) is None:
        say(f"{VENV_DIR} already has the same airlock distributions: kept")
        return copy
    say(f"user {user} is not to run the current program ({problem})")
    python = build_venv(user, wheels, say)
    problem = runs_as(user, python, wanted) or not_roots_own(python)
    if problem is not None:
        raise ProgramError(f"the copy in {VENV_DIR} does not run as {user}: {problem}")
    return python


def check_program(user: str, python: Path) -> None:
    """*user* (a second service user) runs *python* as the first one does."""
    problem = runs_as(user, python, airlock_distributions())
    if problem is not None:
        raise ProgramError(f"user {user} cannot run the program: {problem}")
