"""One way to build, test and check Airlock: ``uv run nox`` runs the default sessions.

Each package is tested in an environment holding only that package, its dependencies
(from uv.lock) and the test tools, so a missing dependency declaration fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "e2e", "discovery"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
# package folder -> its tests folder
PACKAGES = {
    "airlock-core": "tests/core",
    "airlock-mail": "tests/mail",
    "airlock-gmail": "tests/gmail",
    "airlock-icloud": "tests/icloud",
    "airlock-openrouter": "tests/openrouter",
    "airlock-gcal": "tests/gcal",
    "airlock-mcp-proxy": "tests/mcp_proxy",
    "airlock-notify-telegram": "tests/telegram",
    "airlock-notify-signal": "tests/signal",
}

# The long suites, on two workers (pytest-xdist, a module per worker at a time): airlock-core
# 88 s -> 48 s, airlock-mail 28 s -> 17 s here; the short ones would only pay the workers'
# start-up.
ON_TWO_WORKERS = {"airlock-core", "airlock-mail"}


def _sync(session: nox.Session, *args: str) -> None:
    """Install exactly what uv.lock says into this session's environment."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--compile-bytecode",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        silent=True,
    )


def _compile_sources(session: nox.Session) -> None:
    """Bytecode for the workspace's own sources too (``--compile-bytecode`` covers only
    site-packages; they are installed editable): the tests start hundreds of Python
    processes, and with PYTHONDONTWRITEBYTECODE set each would compile them again."""
    sources = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("airlock-*/src"))
    session.run("python", "-m", "compileall", "-q", *sources, "tests", silent=True)


@nox.session
@nox.parametrize("package", list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests with only that package installed (the core with its
    ``speedups`` extra, uvloop, as a daemon runs: the tests that run a transport on both
    loops would otherwise skip uvloop's, and no other session runs them)."""
    extras = ["--extra", "speedups"] if package == "airlock-core" else []
    _sync(session, "--package", package, "--group", "test", *extras)
    _compile_sources(session)
    workers = ["-n", "2", "--dist", "loadfile"] if package in ON_TWO_WORKERS else []
    session.run("pytest", PACKAGES[package], *workers, *session.posargs)


@nox.session
def e2e(session: nox.Session) -> None:
    """End-to-end tests across packages: a real daemon process on a real socket.

    On two workers (pytest-xdist): a test mostly waits for its daemon's processes to
    start or for the phone's next time step, so a second worker fills both cores. Each
    module runs whole on one worker (``--dist loadfile``: module-scoped fixtures, such as
    the isolated-mode install, are made once), in the order tests/e2e/conftest.py gives."""
    _sync(session, "--all-packages", "--group", "test")
    _compile_sources(session)
    workers = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]
    session.run("pytest", "tests/e2e", *workers, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    _sync(session, "--only-group", "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package."""
    _sync(session, "--all-packages", "--group", "dev")
    session.run("mypy")


@nox.session
def discovery(session: nox.Session) -> None:
    """Build real wheels, install only airlock-core, airlock-mail, airlock-gcal,
    airlock-openrouter and airlock-mcp-proxy, and find `maildir`, `gcal`, `openrouter`
    and `mcp`."""
    dist = Path(tempfile.mkdtemp(prefix="airlock-dist-"))
    try:
        session.run("uv", "build", "--all-packages", "--wheel", "-o", str(dist), silent=True)
        wheels = {w.name.split("-")[0]: w for w in dist.glob("*.whl")}
        for wheel in wheels.values():
            with zipfile.ZipFile(wheel) as archive:
                if not any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist()):
                    session.error(f"{wheel.name} carries no LICENSE")
        # Dependencies at the versions uv.lock pins, so the check is reproducible.
        constraints = dist / "constraints.txt"
        session.run(
            "uv",
            "export",
            "--frozen",
            "--all-packages",
            "--no-emit-workspace",
            "--no-hashes",
            "-o",
            str(constraints),
            silent=True,
        )
        session.install(
            "-c",
            str(constraints),
            str(wheels["airlock_core"]),
            str(wheels["airlock_mail"]),
            str(wheels["airlock_gcal"]),
            str(wheels["airlock_openrouter"]),
            str(wheels["airlock_mcp_proxy"]),
        )
        out = session.run("airlock", "plugins", "list", "--json", silent=True)
        assert isinstance(out, str)
        report = json.loads(out)
        found = {
            cid for entry in report for cid in entry.get("components", {}).get("connectors", [])
        }
        failures = [entry for entry in report if "error" in entry]
        if failures or not {"maildir", "gcal", "openrouter", "mcp"} <= found:
            session.error(f"discovery failed: connectors={sorted(found)} failures={failures}")
        session.log(f"discovered connectors from wheels: {sorted(found)}")
    finally:
        shutil.rmtree(dist, ignore_errors=True)


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark; each prints JSON."""
    _sync(session, "--all-packages", "--group", "test")
    env = {"PYTHONDONTWRITEBYTECODE": ""}
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        if not script.name.startswith("_"):
            session.run("python", str(script), *session.posargs, env=env)


if os.environ.get("CI", "").strip().lower() in ("1", "true"):  # as airlock.testing.under_ci
    nox.options.error_on_missing_interpreters = True
