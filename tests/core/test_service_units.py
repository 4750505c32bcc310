"""The systemd units ``airlock service install`` writes, rated by systemd's own tools."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from airlock.service.layout import CORE, DAEMONS, Daemon
from airlock.service.units import analyze, exec_line, system_unit, user_unit
from airlock.testing import skip_or_fail_under_ci


def _needs_systemd_analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        skip_or_fail_under_ci("systemd-analyze is not installed (apt install systemd)")


@pytest.mark.parametrize("daemon", DAEMONS, ids=lambda d: d.name)
def test_the_system_unit_verifies_cleanly_and_rates_at_most_2(
    daemon: Daemon, tmp_path: Path
) -> None:
    _needs_systemd_analyze()
    unit = tmp_path / daemon.unit_name
    unit.write_text(system_unit(daemon, Path(sys.executable)))
    check = analyze(unit)
    assert check.verify_messages == []
    assert check.exposure <= 2.0


def test_a_bare_unit_rates_badly_so_the_measure_means_something(tmp_path: Path) -> None:
    _needs_systemd_analyze()
    unit = tmp_path / "bare.service"
    unit.write_text(f"[Service]\nExecStart={sys.executable} -m airlock serve\n")
    assert analyze(unit).exposure > 9.0


def test_the_system_unit_runs_as_the_service_user_with_the_agents_group() -> None:
    text = system_unit(CORE, Path("/opt/airlock/venv/bin/python"))
    lines = text.splitlines()
    assert "User=airlock" in lines
    assert "SupplementaryGroups=airlock-agents" in lines
    assert "ExecStart=/opt/airlock/venv/bin/python -m airlock serve" in lines
    assert "Environment=AIRLOCK_MODE=isolated" in lines
    # A private user namespace would show every client as `nobody` through SO_PEERCRED.
    assert not any(line.startswith("PrivateUsers") for line in lines)


def test_the_user_unit_verifies_and_quotes_what_systemd_would_expand(tmp_path: Path) -> None:
    _needs_systemd_analyze()
    text = user_unit([sys.executable, "-m", "airlock", "serve"], {"AIRLOCK_HOME": "/tmp/a b%c"})
    assert 'Environment="AIRLOCK_HOME=/tmp/a b%%c"' in text.splitlines()
    unit = tmp_path / "airlock.service"
    unit.write_text(text)
    assert analyze(unit).verify_messages == []


def test_exec_words_with_spaces_quotes_and_specifiers_stay_one_word() -> None:
    assert exec_line(["/opt/my python/bin/python", "-c", 'print("%h")']) == (
        '"/opt/my python/bin/python" -c "print(\\"%%h\\")"'
    )
