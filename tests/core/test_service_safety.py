"""Root works inside directories that the service user or the person owns: it must never
write, chown or read through a link planted there."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airlock.errors import AirlockError
from airlock.service import isolated
from airlock.service.control import KEEPER, isolated_daemon
from airlock.service.isolated import own_tree
from airlock.service.layout import CORE, DAEMONS
from airlock.service.migrate import _plain, check_layout, refuse_while_running
from airlock.service.root_owned import changeable_above, changeable_by_others
from airlock.service.supervisor import Supervised, _open_log, _write_pid, running_pid
from airlock.settings.paths import Mode, resolve_paths

ME = pwd.getpwuid(os.getuid()).pw_name


def _daemon(tmp_path: Path) -> Supervised:
    return Supervised(
        argv=["true"],
        env={},
        pid_file=tmp_path / "run" / "airlock.pid",
        log_file=tmp_path / "log" / "airlock.log",
        socket=tmp_path / "run" / "airlock.sock",
    )


def test_the_pid_file_is_written_fresh_never_through_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    daemon = _daemon(tmp_path)
    daemon.pid_file.parent.mkdir()
    daemon.pid_file.symlink_to(victim)
    _write_pid(daemon.pid_file, 4242)
    assert victim.read_text() == "precious\n"
    assert not daemon.pid_file.is_symlink()
    assert daemon.pid_file.read_text() == "4242\n"


def test_a_pid_file_that_is_a_link_names_no_daemon(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path)
    daemon.pid_file.parent.mkdir()
    (tmp_path / "elsewhere").write_text(f"{os.getpid()}\n")
    daemon.pid_file.symlink_to(tmp_path / "elsewhere")
    assert running_pid(daemon) is None


def test_a_log_file_hard_linked_elsewhere_is_refused(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path)
    daemon.log_file.parent.mkdir()
    (tmp_path / "victim").write_text("precious\n")
    os.link(tmp_path / "victim", daemon.log_file)
    with pytest.raises(AirlockError, match="not a plain file"):
        _open_log(daemon)
    os.close(_open_log(_daemon(tmp_path / "fresh")))


def test_chowning_the_state_refuses_a_hard_link(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "totp.key").write_text("x")
    own_tree(state, ME)
    os.link(tmp_path / "state" / "totp.key", tmp_path / "second-name")
    with pytest.raises(AirlockError, match="hard links"):
        own_tree(state, ME)


def test_chowning_the_state_never_follows_a_folder_swapped_for_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root hands /var/lib/airlock back to the service user (``airlock totp setup``, a
    second install). A compromised daemon owns that folder: while root works through it,
    it swaps a folder it listed for a link to /etc, and a chown by path would then give
    root's /etc/shadow (here a stand-in) to the service user. Chowns go by the folder
    root opened, never by a path the service user can re-point."""
    state = tmp_path / "state"
    (state / "d").mkdir(parents=True)
    (state / "d" / "shadow").write_text("x")
    system = tmp_path / "etc"
    system.mkdir()
    (system / "shadow").write_text("root's")
    victim = (system / "shadow").stat().st_ino
    chowned: list[int] = []
    real_chown, real_fchown = os.chown, os.fchown

    def swap_once() -> None:  # the attacker's moment: root has listed the tree
        if not (state / "d").is_symlink():
            (state / "d").rename(state / "d.old")
            (state / "d").symlink_to(system)

    def chown(path: str, uid: int, gid: int, **kw: Any) -> None:
        swap_once()
        chowned.append(os.stat(path, dir_fd=kw.get("dir_fd"), follow_symlinks=False).st_ino)
        real_chown(path, uid, gid, **kw)

    def fchown(fd: int, uid: int, gid: int) -> None:
        swap_once()
        chowned.append(os.fstat(fd).st_ino)
        real_fchown(fd, uid, gid)

    monkeypatch.setattr(os, "chown", chown)
    monkeypatch.setattr(os, "fchown", fchown)
    own_tree(state, ME)
    assert chowned  # the tree was worked through
    assert victim not in chowned


def test_import_takes_only_plain_files(tmp_path: Path) -> None:
    plain = tmp_path / "totp.key"
    plain.write_text("x")
    assert _plain(plain)
    assert not _plain(tmp_path / "missing")
    link = tmp_path / "audit.key"
    link.symlink_to("/etc/hostname")
    with pytest.raises(AirlockError, match="not a plain file"):
        _plain(link)
    os.link(plain, tmp_path / "again")
    with pytest.raises(AirlockError, match="not a plain file"):
        _plain(plain)
    folder_link = tmp_path / "audit"
    folder_link.symlink_to(tmp_path)
    with pytest.raises(AirlockError, match="not a plain directory"):
        _plain(folder_link, folder=True)


def test_import_refuses_a_config_folder_that_leads_out_of_the_home(tmp_path: Path) -> None:
    """``--import-personal``: root copies the person's ``config.yaml`` into /etc/airlock
    and deletes it. An agent running as the person makes ``~/.config/airlock`` a link to
    another program's folder: root would have copied that program's config.yaml (for the
    daemon to show its lines in errors) and deleted it. Refused before anything moves."""
    home = tmp_path / "home"
    (home / ".local" / "share" / "airlock").mkdir(parents=True)
    elsewhere = tmp_path / "etc" / "other-program"
    elsewhere.mkdir(parents=True)
    (elsewhere / "config.yaml").write_text("password: hunter2\n")
    paths = resolve_paths({"HOME": str(home), "AIRLOCK_MODE": Mode.PERSONAL.value})
    check_layout(paths, home)  # no config folder at all: fine
    (home / ".config").mkdir()
    (home / ".config" / "airlock").symlink_to(elsewhere)
    with pytest.raises(AirlockError, match="leads outside"):
        check_layout(paths, home)
    (home / ".config" / "airlock").unlink()
    (home / ".config").rmdir()
    (home / ".config").symlink_to(tmp_path / "etc")  # one folder further up
    (tmp_path / "etc" / "airlock").mkdir()
    with pytest.raises(AirlockError, match="leads outside"):
        check_layout(paths, home)
    assert (elsewhere / "config.yaml").read_text() == "password: hunter2\n"


def test_the_personal_daemons_lock_is_not_opened_through_a_link(tmp_path: Path) -> None:
    """``--import-personal``: root checks the person's daemon is stopped by taking its
    lock, in a directory the agent (running as the person) may write. A link there (to a
    device, say) is refused, not opened read-write as root."""
    device = tmp_path / "device"
    os.mkfifo(device)  # stands in for a device file: opening it read-write "does" something
    lock = tmp_path / "daemon.lock"
    lock.symlink_to(device)
    with pytest.raises(AirlockError, match="not a plain file"):
        refuse_while_running(ME, lock)
    lock.unlink()
    refuse_while_running(ME, lock)  # none: nothing to refuse
    lock.write_text("")
    refuse_while_running(ME, lock)  # a plain lock nobody holds


def test_a_service_user_cannot_plant_code_its_next_start_imports(tmp_path: Path) -> None:
    """A compromised host (or core) writes a package named ``airlock`` where its own user
    may: the working directory the supervisor gave it (its state directory) and the user
    site-packages under its home (the same directory). The next start, after the person
    upgraded the broken parser away, must not import it: the daemons, and the keeper that
    restarts the host, run with ``python -I`` from ``/``."""
    home = tmp_path / "var-lib-airlock-connectors"
    ran = tmp_path / "planted-code-ran"
    plant = f"open({str(ran)!r}, 'a').write('ran')\nraise SystemExit(99)\n"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for where in (home, home / ".local" / "lib" / version / "site-packages"):
        (where / "airlock").mkdir(parents=True)
        (where / "airlock" / "__init__.py").write_text(plant)
    core = isolated_daemon(CORE)
    assert core.cwd == Path("/")
    for flags in (core.argv[1:-3], KEEPER[:-3]):  # the interpreter's flags before -m
        done = subprocess.run(
            [sys.executable, *flags, "-m", "airlock.service.keeper"],
            cwd=home,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            check=False,
        )
        assert not ran.exists(), f"{flags}: a start imported the planted package"
        assert done.returncode == 2, done.stderr  # the keeper's usage: it was airlock's own
    for daemon in DAEMONS:
        assert daemon.arguments(peer_uid=1)[0] == "-I"


def test_a_program_others_could_change_is_found(tmp_path: Path) -> None:
    """Isolated mode's daemons must not run a program the person's uid (where an agent
    may run) could change: a venv in a home folder, a folder on the import path open to
    writing, a link in site-packages to such a folder. The install copies the program
    to /opt/airlock/venv instead (and the daemons' users would read it all the same)."""
    program = tmp_path / "venv"
    site = program / "lib" / "site-packages"
    (site / "airlock").mkdir(parents=True)
    (site / "airlock" / "__init__.py").write_text("")
    assert changeable_by_others([site]) is None
    assert changeable_above(site) is None
    (site / "airlock").chmod(0o777)  # a folder anyone may add a module to
    assert changeable_by_others([site]) == site / "airlock"
    (site / "airlock").chmod(0o755)
    (site / "airlock" / "__init__.py").chmod(0o666)
    assert changeable_by_others([site]) == site / "airlock" / "__init__.py"
    (site / "airlock" / "__init__.py").chmod(0o644)
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    (site / "extra").symlink_to(home)  # an editable install from a folder open to all
    assert changeable_by_others([site]) == home
    assert changeable_above(home / "anything") == home
    sticky = tmp_path / "shared"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp: others add files, never replace root's
    assert changeable_above(sticky) is None


def test_uninstall_removes_only_the_program_copy_install_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/opt/airlock may hold the person's own files (a clone of the project, say):
    uninstall removes the venv it made there, not them; install makes only the venv
    readable by everyone, not them."""
    program_dir = tmp_path / "opt" / "airlock"
    (program_dir / "venv" / "bin").mkdir(parents=True)
    (program_dir / "notes.txt").write_text("mine\n")
    monkeypatch.setattr(isolated, "PROGRAM_DIR", program_dir)
    monkeypatch.setattr(isolated, "VENV_DIR", program_dir / "venv")
    said: list[str] = []
    isolated.remove_program(said.append)
    assert (program_dir / "notes.txt").read_text() == "mine\n"
    assert not (program_dir / "venv").exists()
    assert said == [f"removed {program_dir / 'venv'}", f"kept {program_dir}: it holds files "
                    "airlock did not put there"]  # fmt: skip
    (program_dir / "notes.txt").unlink()
    isolated.remove_program(said.append)
    assert not program_dir.exists()


def test_install_makes_no_folder_through_a_planted_link(tmp_path: Path) -> None:
    """A link where install makes its folders (/var/log/airlock, in a /var/log some
    distributions let group syslog write) must not get root to chown and chmod what it
    points to (/etc, say) for the service user."""
    victim = tmp_path / "etc"
    victim.mkdir(mode=0o755)
    victim.chmod(0o755)
    link = tmp_path / "log" / "airlock"
    link.parent.mkdir()
    link.symlink_to(victim)
    group = grp.getgrgid(os.getgid()).gr_name
    with pytest.raises(AirlockError, match="a link"):
        isolated._directory(link, ME, group, 0o700, lambda _: None)
    assert victim.stat().st_mode & 0o777 == 0o755
    said: list[str] = []
    isolated._directory(tmp_path / "log" / "real", ME, group, 0o700, said.append)
    assert (tmp_path / "log" / "real").stat().st_mode & 0o777 == 0o700
    assert said == [f"created {tmp_path / 'log' / 'real'} ({ME}:{group} 700)"]
