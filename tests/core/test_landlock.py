"""Hiding Airlock's files from a program the connector host starts, on this kernel's real
Landlock: each program runs in a process of its own (a Landlock domain cannot be left)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airlock.common.landlock import abi_version, allowed_entries, sparing
from airlock.connector_host import confine
from airlock.testing import skip_or_fail_under_ci

PROBE = """
import json, os, sys
found = {}
for name in sys.argv[1:]:
    kind, _, path = name.partition(":")
    try:
        if kind == "read":
            with open(path) as handle:
                found[name] = handle.read()
        elif kind == "write":
            with open(path, "w") as handle:
                handle.write("planted")
            found[name] = "written"
        elif kind == "list":
            found[name] = sorted(os.listdir(path))
        elif kind == "rename":
            source, _, target = path.partition(">")
            os.rename(source, target)
            found[name] = "renamed"
    except OSError as exc:
        found[name] = exc.strerror
print(json.dumps(found))
"""


@pytest.fixture(autouse=True)
def _needs_landlock() -> None:
    if abi_version() <= 0:
        skip_or_fail_under_ci("this kernel has no Landlock (Linux 5.13+)")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "airlock" / "connectors").mkdir(parents=True)
    (tmp_path / "airlock" / "totp.key").write_text("totp secret")
    (tmp_path / "airlock" / "connectors" / "vault.key").write_text("vault key")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("notes")
    (tmp_path / "config.yaml").write_text("services: {}")
    return tmp_path


def confined(hidden: list[Path], *probes: str) -> dict[str, object]:
    argv = [sys.executable, "-I", "-m", "airlock.connector_host.confine"]
    argv += [str(path) for path in hidden]
    argv += ["--", sys.executable, "-c", PROBE, *probes]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "unconfined" not in done.stderr
    found: dict[str, object] = json.loads(done.stdout)
    return found


def test_a_hidden_folder_and_file_cannot_be_read_written_or_replaced(tree: Path) -> None:
    secret, vault_key = tree / "airlock" / "totp.key", tree / "airlock/connectors/vault.key"
    found = confined(
        [tree / "airlock", tree / "config.yaml"],
        f"read:{secret}",
        f"read:{vault_key}",
        f"read:{tree / 'config.yaml'}",
        f"write:{tree / 'airlock' / 'planted'}",
        f"write:{tree / 'config.yaml'}",
        f"rename:{tree / 'work' / 'notes.txt'}>{tree / 'airlock' / 'totp.key'}",
        f"read:{tree / 'work' / 'notes.txt'}",
        f"write:{tree / 'work' / 'new.txt'}",
        "read:/etc/hostname",
    )
    denied = "Permission denied"
    assert found[f"read:{secret}"] == denied
    assert found[f"read:{vault_key}"] == denied
    assert found[f"read:{tree / 'config.yaml'}"] == denied
    assert found[f"write:{tree / 'airlock' / 'planted'}"] == denied
    assert found[f"write:{tree / 'config.yaml'}"] == denied
    assert found[f"rename:{tree / 'work' / 'notes.txt'}>{tree / 'airlock' / 'totp.key'}"] == denied
    assert secret.read_text() == "totp secret"
    assert (tree / "config.yaml").read_text() == "services: {}"
    assert not (tree / "airlock" / "planted").exists()
    # Everything else as before: its own folders read and written, the system's read.
    assert found[f"read:{tree / 'work' / 'notes.txt'}"] == "notes"
    assert found[f"write:{tree / 'work' / 'new.txt'}"] == "written"
    assert found["read:/etc/hostname"] == Path("/etc/hostname").read_text()


def test_what_stays_out_is_as_documented_names_listed_and_no_new_entries_on_the_way(
    tree: Path,
) -> None:
    found = confined(
        [tree / "airlock"],
        f"list:{tree / 'airlock'}",
        f"write:{tree / 'fresh.txt'}",
    )
    assert found[f"list:{tree / 'airlock'}"] == ["connectors", "totp.key"]
    assert found[f"write:{tree / 'fresh.txt'}"] == "Permission denied"


def test_a_link_to_a_hidden_file_and_a_path_beneath_another_hidden_one_stay_hidden(
    tree: Path,
) -> None:
    link = tree / "work" / "shortcut"
    link.symlink_to(tree / "airlock" / "totp.key")
    nested = tree / "airlock" / "connectors" / "vault.key"
    found = confined([tree / "airlock", nested], f"read:{link}", f"read:{nested}")
    assert found == {f"read:{link}": "Permission denied", f"read:{nested}": "Permission denied"}
    rules = {path for path, _ in allowed_entries([tree / "airlock", nested])}
    assert not any(tree / "airlock" in (path, *path.parents) for path in rules)


def test_the_program_gets_its_arguments_environment_and_folder_unchanged(tree: Path) -> None:
    argv = [sys.executable, "-I", "-m", "airlock.connector_host.confine", str(tree / "airlock")]
    show = "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['TOY'], os.getcwd()]))"
    done = subprocess.run(
        [*argv, "--", sys.executable, "-c", show, "a b", "--", "-x"],
        capture_output=True,
        text=True,
        env={"TOY": "value", "PATH": os.environ["PATH"]},
        cwd=tree / "work",
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [["a b", "--", "-x"], "value", str(tree / "work")]


def test_a_missing_program_or_no_program_is_a_clear_error(tree: Path) -> None:
    base = [sys.executable, "-I", "-m", "airlock.connector_host.confine", str(tree / "airlock")]
    missing = subprocess.run(
        [*base, "--", str(tree / "no-such-server")], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 127
    assert "cannot run" in missing.stderr
    assert "Traceback" not in missing.stderr
    bare = subprocess.run([*base], capture_output=True, text=True, check=False)
    assert bare.returncode == 2
    assert "usage:" in bare.stderr


def test_a_connector_run_without_a_host_starts_its_program_as_configured() -> None:
    saved = list(confine.HIDDEN)
    try:
        confine.HIDDEN.clear()
        assert confine.confined_command(["npx", "-y", "server"]) == ["npx", "-y", "server"]
        confine.HIDDEN.append(Path("/var/lib/airlock-connectors/vault.key"))
        wrapped = confine.confined_command(["npx", "-y", "server"])
        assert wrapped[-4:] == ["--", "npx", "-y", "server"]
        assert "/var/lib/airlock-connectors/vault.key" in wrapped
    finally:
        confine.HIDDEN[:] = saved


def test_the_host_spares_only_the_way_to_its_own_folder(tree: Path) -> None:
    own = tree / "airlock" / "connectors"
    hidden = sparing([tree / "airlock", tree / "config.yaml"], own)
    assert sorted(hidden) == sorted([tree / "airlock" / "totp.key", tree / "config.yaml"])
    assert sparing([tree / "work"], own) == [tree / "work"], "a folder not holding it stays whole"


def test_a_hidden_path_reached_through_a_link_cannot_be_pointed_elsewhere(tree: Path) -> None:
    # A config kept with dotfiles (stow, home-manager) is a link to the real file, and a
    # data folder may be a link to another disk: replacing the link would hand the daemon
    # a config (a wider policy) or a data folder (a TOTP secret) the program chose.
    (tree / "dotfiles").mkdir()
    (tree / "dotfiles" / "config.yaml").write_text("services: {}")
    (tree / "xdg" / "airlock").mkdir(parents=True)
    config = tree / "xdg" / "airlock" / "config.yaml"
    config.symlink_to(tree / "dotfiles" / "config.yaml")
    (tree / "share").mkdir()
    data = tree / "share" / "airlock"
    data.symlink_to(tree / "airlock")
    found = confined(
        [data, config, data / ".." / "config.yaml"],
        f"read:{tree / 'config.yaml'}",
        f"write:{tree / 'xdg' / 'airlock' / 'wider.yaml'}",
        f"rename:{tree / 'xdg' / 'airlock' / 'wider.yaml'}>{config}",
        f"rename:{data}>{tree / 'share' / 'moved'}",
        f"read:{config}",
        f"write:{tree / 'work' / 'new.txt'}",
    )
    assert found[f"rename:{tree / 'xdg' / 'airlock' / 'wider.yaml'}>{config}"] != "renamed"
    assert found[f"rename:{data}>{tree / 'share' / 'moved'}"] == "Permission denied"
    assert found[f"read:{config}"] == "Permission denied"
    assert config.read_text() == "services: {}"
    assert data.is_symlink()
    # ".." after a link goes up from where the link leads, as the kernel does it.
    assert found[f"read:{tree / 'config.yaml'}"] == "Permission denied"
    assert found[f"write:{tree / 'work' / 'new.txt'}"] == "written"


def test_the_host_keeps_its_own_folder_through_a_linked_data_folder(tree: Path) -> None:
    # The data folder a link to another disk: the host hides the link (it cannot be
    # pointed elsewhere) and all of the folder but its own, which it still reads.
    (tree / "share").mkdir()
    data = tree / "share" / "airlock"
    data.symlink_to(tree / "airlock")
    (tree / "airlock" / "notes").symlink_to(tree / "work")  # a link inside: not followed
    probe = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "from airlock.connector_host.confine import confine_host\n"
        "data = Path(sys.argv[1])\n"
        "found = {'unconfined': confine_host([data], data / 'connectors')}\n"
        "for path in sys.argv[2:]:\n"
        "    try:\n"
        "        found[path] = Path(path).read_text()\n"
        "    except OSError as exc:\n"
        "        found[path] = exc.strerror\n"
        "print(json.dumps(found))\n"
    )
    own, secret = data / "connectors" / "vault.key", data / "totp.key"
    notes = tree / "work" / "notes.txt"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(data), str(own), str(secret), str(notes)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "unconfined": None,
        str(own): "vault key",
        str(secret): "Permission denied",
        str(notes): "notes",
    }
