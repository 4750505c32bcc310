"""CLI start-up time: median wall time of every command that does not need the daemon,
and of `airlock status` with one, against `python -c pass` in the same run. Prints JSON:
wall medians (``figures``, what the targets are about), CPU medians (``cpu_ms``: user +
system of the command, which other work on the cores disturbs far less), each command's
ratio to `python -c pass`, and the load average.

Targets: each offline command <= 150 ms (about 10x `python -c pass` here); `airlock status`
with a daemon <= 200 ms. ``status`` and ``services`` are timed twice: in the home
``airlock init`` made (no service yet) and in one whose config names a Maildir service,
as a person's does once set up (describing a service imports its connector's settings
model, and with it pydantic, on the first run: the warm-up runs; later ones say again
what it found, ``airlock.cli.checked``).

Bytecode is written by warm-up runs (PYTHONDONTWRITEBYTECODE is cleared), as a user's
installed copy would have it. Reproduce: ``uv run python benchmarks/cli_startup.py``
(``--runs N``); ``uv run nox -s bench`` runs it with the other benchmarks.

Where the time went (issue 17; ``python -X importtime`` and cProfile) and what changed:

- ``plugins list``, ``status``, ``services``: registering plugins imported every
  component module, with pydantic, model building, httpx (and through it rich) for the
  Telegram and Signal notifiers, Google's and the MCP SDK's modules. Plugins now declare
  components by reference (``"imap = airlock_mail.imap:ImapConnector"``, docs/plugins.md);
  a class is imported when a command first uses it.
- every command but ``--help``: typer 0.2x converts each parameter through a pydantic
  ``TypeAdapter`` (importing pydantic, ~60 ms); ``airlock.cli._lean`` builds it only for
  a value that needs converting. pydantic's plugin loader imported ``importlib.metadata``
  although plugins are disabled; a stand-in that finds none replaces it in the CLI.
- ``status``, ``services``: pydantic-settings (a fifth of ``status``) is gone from the
  config; with no daemon the client (aiohttp, asyncio, the API models) is not imported;
  with one, ``status`` asks with one blocking GET (``airlock.clients._plain``).
- ``audit verify``: reads the log without asyncio, multiprocessing or pydantic.
- tests/e2e/test_cli_imports.py fails if any of these imports comes back.

Figures on the 2-core machine, 2026-12-02: the commit before the work (e8e905c) and the
one after it, measured one after the other in the same session while other sessions
loaded the cores (load average 8-11): wall medians are several times what an idle
machine shows, so the CPU medians are the comparison. 15 runs each, ms:

| command | wall before | wall after | CPU before | CPU after | CPU after / before |
| --- | --- | --- | --- | --- | --- |
| python -c pass | 76.2 | 71.4 | 31.1 | 19.7 | 0.63 |
| airlock --help | 666.5 | 905.3 | 324.5 | 309.4 | 0.95 |
| airlock plugins list | 4719.3 | 729.6 | 1487.5 | 229.4 | 0.15 |
| airlock init | 1516.1 | 771.5 | 568.3 | 200.4 | 0.35 |
| airlock status (no daemon) | 2960.1 | 1804.0 | 1342.5 | 510.8 | 0.38 |
| airlock services (no daemon) | 3124.0 | 2228.1 | 1146.0 | 585.8 | 0.51 |
| airlock audit verify (small log) | 3251.9 | 1160.3 | 901.9 | 329.5 | 0.37 |
| airlock status (daemon running) | 5863.9 | 1336.4 | 1794.2 | 499.5 | 0.28 |

Earlier runs the same day (load 4.6-6.5, before the last change: one module's commands
built) gave after / before 1.13, 0.25, 0.45, 0.35-0.5, 0.55-0.65, 0.50 and 0.34 in the
same order. On a quieter run before the work, --help took 94 ms, plugins list 386, init
177, status 399, services 301, audit verify 222 and status with a daemon 512; scaled by
these ratios that is about 90-105, 60-100, 60-80, 140-200, 155-195, 80-110 and 145-175
ms after it: an estimate, not a measurement. By it ``--help``, ``plugins list``,
``init``, ``audit verify`` and status with a daemon would meet their targets on a quiet
machine, and ``status`` and ``services`` without a daemon are near or above 150 ms; none
holds while the machine is loaded as it was here.

A second round, the same day: on a quiet machine (load 0.9, 11 runs, wall ms) --help took
151.5, plugins list ~108, init ~99, status 254.2 and services 233.0 without a daemon,
audit verify 133.6 and status with one 241.0: status and services were over target.

- ``status``, ``services``: building the config's pydantic models was about half of
  either. ``airlock.settings.config_plain`` tells a config that sets only plain values
  and names no service valid without them; anything else (a service, an ``AIRLOCK_``
  variable setting a key, an unusual value, a mistake) is loaded by the models, which
  accept it or refuse it with the same message. The file ``airlock init`` writes is
  known without importing YAML (``airlock.settings.config_template``: another 15-20 ms
  with that file, which this benchmark, run without one, does not show).
- every command: the cyclic collector walked everything start-up made, at each
  collection and again at exit; ``gc.freeze()`` once the commands are built saves about
  15 ms CPU of each.
- ``--help``: typer read each command's signature twice, evaluating its annotations each
  time (``airlock.cli._lean.signatures_read_once``); entry points are scanned with
  plain strings (~1 ms of every command).

Before (73403fe) and after (d7cf7b1), in the same loop one after the other, 21 runs each,
while other sessions loaded the cores (load average 4.6-4.8), ms:

| command | wall before | wall after | CPU before | CPU after | CPU after / before |
| --- | --- | --- | --- | --- | --- |
| python -c pass | 22.6 | | 14.6 | | |
| airlock --help | 276.1 | 244.4 | 148.6 | 125.7 | 0.85 |
| airlock plugins list | 283.4 | 233.7 | 143.0 | 114.0 | 0.80 |
| airlock init | 201.5 | 169.1 | 112.9 | 98.5 | 0.87 |
| airlock status (no daemon) | 602.7 | 239.9 | 324.8 | 125.6 | 0.39 |
| airlock services (no daemon) | 385.3 | 130.8 | 263.1 | 93.4 | 0.36 |
| airlock audit verify (small log) | 190.5 | 148.9 | 130.1 | 108.0 | 0.83 |
| airlock status (daemon running) | 329.4 | 129.5 | 233.4 | 93.3 | 0.40 |

This benchmark on its own right after (load 4.3, 11 runs) met every target: wall 144.3,
129.4, 118.2, 94.8, 79.0, 98.9 and 121.1 ms in the order above. Scaling the quiet
figures by the CPU ratios gives about 129, 86, 86, 99, 84, 111 and 96 ms: an estimate,
not a measurement (no quiet machine was to be had).

What remains is Python itself (~13 ms), importing typer with the standard library it
pulls in (~40 ms CPU), pluggy and the plugin modules (~13 ms); ``--help`` also builds
every command (~15 ms), and ``audit verify`` imports the audit modules (~10 ms).

A third round, with a Maildir service in the config (a person's, once set up), where
``status`` and ``services`` cost about 180 ms CPU more than without one:

- ``status`` with a daemon running: the daemon loads a config only when every service's
  connector accepts its settings, so when it says the file is unchanged since it loaded
  it (``config_changed``), with the same services, connectors installed here, the file
  plainly valid here and no ``AIRLOCK_`` variable setting a key, ``status`` describes
  the services from its answer (``airlock.cli.status.checked_by_daemon``): no connector,
  pydantic or config model is imported, only YAML to read the file. Anything else is
  checked here, as before (tests/e2e/test_status_with_daemon.py: both print the same).
- ``status``, ``services``: ``config_plain`` now also reads a plainly valid config's
  services, so the config's models are not built (the connector still checks its
  settings, with pydantic).
- the ``maildir`` connector imports asyncio (with ssl) and its MIME parser (email, html)
  when it works, not with its module (docs/plugins.md asks plugins to do the same).

CPU medians, ms, before (5b802df) and after (2f17645), load average 4.2-5.4: status
with a daemon from two benchmark runs each, the others interleaved before/after over 8
rounds of 3 runs (sequential runs moved by +-20% with the load):

| command (one Maildir service) | CPU before | CPU after | after / before |
| --- | --- | --- | --- |
| airlock status (no daemon) | 248.9 | 215.0 | 0.86 |
| airlock services (no daemon) | 250.2 | 209.5 | 0.84 |
| airlock status (daemon running) | 314.9, 276.7 | 100.6, 108.5 | 0.35 |

Wall medians in the same benchmark runs: status with a daemon 430.5 and 406.4 before,
106.4 and 166.2 after (target 200: met); status and services without one 248.2-377.9
after (target 150: missed). What remains there is pydantic itself (importing
``BaseModel`` and building the first model, about 110 ms CPU here): a connector's
settings and operations are pydantic models, and no daemon has checked them; then YAML
(~16 ms) for a file that is not the template, and the connector's models (~20-40 ms).

A fourth round: ``status`` and ``services`` keep what checking the services found
(``airlock.cli.checked``, under a key of the config's text, the code that checks and what
the settings name on this machine) and, while none of it changes, say it again without
the connector, pydantic or YAML; the first run after a change still checks (~225 ms).
CPU medians, ms, one Maildir service and no daemon, before (81bfdf2) and after
(661ae3b), load average 2-3: two benchmark runs of each, then three interleaved rounds
of 11 runs of the two commands (last column: the ratio of the medians of the five):

| command (one Maildir service) | CPU before | CPU after | after / before |
| --- | --- | --- | --- |
| status | 224.0, 268.1; 272.6, 257.1, 303.6 | 88.3, 91.0; 97.3, 136.7, 129.2 | 0.36 |
| services | 236.9, 269.4; 242.4, 249.5, 295.5 | 120.6, 84.0; 127.9, 139.7, 102.7 | 0.48 |

Wall medians in the quieter benchmark run after (load 2.4, 15 runs): 94.3 and 123.6 ms,
where the same commands without a service took 93.9 and 95.5 (target 150: met).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airlock.clients.local_daemon import LocalDaemon

TARGET_OFFLINE_MS = 150.0
TARGET_STATUS_MS = 200.0
OFFLINE = {
    "airlock --help": ["--help"],
    "airlock plugins list": ["plugins", "list"],
    "airlock init": ["init"],
    "airlock status (no daemon)": ["status"],
    "airlock services (no daemon)": ["services"],
    "airlock audit verify (small log)": ["audit", "verify"],
}
WITH_A_SERVICE = {
    "airlock status (one service, no daemon)": ["status"],
    "airlock services (one service, no daemon)": ["services"],
}


def airlock_command() -> list[str]:
    script = Path(sys.executable).with_name("airlock")
    return [str(script)] if script.exists() else [shutil.which("airlock") or "airlock"]


def median_ms(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of *argv*, in ms. CPU time
    says what the command costs when other work shares the cores."""
    for _ in range(3):  # warm-up: page cache and .pyc files
        subprocess.run(argv, env=env, capture_output=True, check=False)
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        wall.append((time.perf_counter() - started) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        cpu.append(used * 1000)
    return round(statistics.median(wall), 1), round(statistics.median(cpu), 1)


def small_audit_log(home: Path) -> None:
    """A few records written the way the daemon writes them, so `audit verify` has work."""
    from airlock.security.audit import AuditLog
    from airlock.settings.paths import resolve_paths

    paths = resolve_paths({"AIRLOCK_HOME": str(home)})
    paths.ensure_data_dirs()
    with AuditLog(paths.audit_dir, paths.audit_key_file) as log:
        for n in range(50):
            log.append_sync("operation", service="mail", operation="count_unread", count=n)


SERVICE_CONFIG = """services:
  mail:
    connector: maildir
    path: {maildir}
"""


def home_with_a_service(home: Path) -> None:
    """A home whose config names one service (a Maildir), as a person's would: status and
    services then describe it, which needs its connector's settings model."""
    maildir = home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (home / "config.yaml").write_text(SERVICE_CONFIG.format(maildir=maildir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="airlock-bench-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["AIRLOCK_HOME"] = str(home)
    served = Path(tempfile.mkdtemp(prefix="airlock-bench-service-"))
    served_env = {**env, "AIRLOCK_HOME": str(served)}
    airlock = airlock_command()
    try:
        small_audit_log(home)
        measured = {"python -c pass": median_ms([sys.executable, "-c", "pass"], env, args.runs)}
        for name, argv in OFFLINE.items():
            measured[name] = median_ms([*airlock, *argv], env, args.runs)
        with LocalDaemon(home):
            measured["airlock status (daemon running)"] = median_ms(
                [*airlock, "status"], env, args.runs
            )
        home_with_a_service(served)
        for name, argv in WITH_A_SERVICE.items():
            measured[name] = median_ms([*airlock, *argv], served_env, args.runs)
        with LocalDaemon(served):
            measured["airlock status (one service, daemon running)"] = median_ms(
                [*airlock, "status"], served_env, args.runs
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(served, ignore_errors=True)
    figures = {name: wall for name, (wall, _) in measured.items()}
    cpu = {name: used for name, (_, used) in measured.items()}
    baseline = figures["python -c pass"]
    slow = {
        name: ms
        for name, ms in figures.items()
        if name.startswith("airlock ")
        and ms > (TARGET_STATUS_MS if "daemon running" in name else TARGET_OFFLINE_MS)
    }
    print(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "unit": "ms (median wall time)",
                "runs": args.runs,
                "figures": figures,
                "cpu_ms": cpu,
                "ratio_to_python": {
                    name: round(ms / baseline, 1) for name, ms in figures.items() if baseline
                },
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "targets": {
                    "offline_ms": TARGET_OFFLINE_MS,
                    "status_with_daemon_ms": TARGET_STATUS_MS,
                },
                "over_target": slow,
                "meets_targets": not slow,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
