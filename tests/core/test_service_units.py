"""The systemd units ``airlock service install`` writes, rated by systemd's own tools."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from airlock.service.layout import CORE, DAEMONS, HOST, Daemon
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
    for each in DAEMONS:  # the core's Requires= must find the host's unit
        (tmp_path / each.unit_name).write_text(
            system_unit(each, Path(sys.executable), peer_uid=999)
        )
    check = analyze(tmp_path / daemon.unit_name)
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
    assert "ExecStart=/opt/airlock/venv/bin/python -I -m airlock serve" in lines
    assert "Environment=AIRLOCK_MODE=isolated" in lines
    # A private user namespace would show every client as `nobody` through SO_PEERCRED.
    assert not any(line.startswith("PrivateUsers") for line in lines)


def test_the_host_unit_runs_as_its_own_user_and_serves_only_the_core_s_uid() -> None:
    lines = system_unit(HOST, Path("/opt/airlock/venv/bin/python"), peer_uid=998).splitlines()
    assert "User=airlock-connectors" in lines
    assert "Group=airlock-connectors" in lines
    assert not any(line.startswith("SupplementaryGroups") for line in lines)
    assert (
        "ExecStart=/opt/airlock/venv/bin/python -I -m airlock.connector_host"
        " --listen /run/airlock-connectors/host.sock"
        " --data-dir /var/lib/airlock-connectors --allow-uid 998"
    ) in lines
    assert "Restart=always" in lines
    assert "StateDirectory=airlock-connectors" in lines
    assert "RuntimeDirectory=airlock-connectors" in lines
    # Its socket directory takes the core's group (setgid) before it starts.
    assert any(
        line.startswith("ExecStartPre=+")
        and line.endswith("-o airlock-connectors -g airlock -m 2750 /run/airlock-connectors")
        for line in lines
    )
    # It dials out only: no listening on IP ports, and the core's files are not there.
    assert "SocketBindDeny=any" in lines
    assert "InaccessiblePaths=-/var/lib/airlock -/var/log/airlock -/etc/airlock" in lines
    assert not any(line.startswith(("PrivateUsers", "ExecReload")) for line in lines)


def test_the_core_unit_needs_the_host_and_starts_after_it() -> None:
    lines = system_unit(CORE, Path("/opt/airlock/venv/bin/python")).splitlines()
    assert "Requires=airlock-connectors.service" in lines
    assert "After=airlock-connectors.service" in lines
    assert "Restart=on-failure" in lines
    assert "InaccessiblePaths=-/var/lib/airlock-connectors -/var/log/airlock-connectors" in lines


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
