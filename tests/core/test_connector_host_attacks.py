"""The connector host attacked from outside the protocol: by another local user who can
write the directory the daemon was started in, and by a compromised host that plants
links in its own directory for root to follow or answers in shapes the core did not ask
for.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import pyotp
import pytest
from tests.core.frames import frames_of
from tests.core.gateway_fixtures import Toolbox

from airlock.clients.local_daemon import LocalDaemon
from airlock.connector_host.client import ConnectorHost
from airlock.connector_host.keys import SEALED_KEY_FILE, HostKeys
from airlock.connector_host.link import ChildHost, HostLink, Streams
from airlock.connector_host.protocol import (
    MAX_ANSWER_BYTES,
    MAX_REQUEST_BYTES,
    write_frame,
)
from airlock.errors import AirlockError, ConnectorError
from airlock.gateway.services import Service
from airlock.passphrase import key_from, lock_is_on, seal
from airlock.security.totp import save_secret
from airlock.security.vault import Vault
from airlock.settings.paths import resolve_paths


def test_a_child_host_does_not_import_code_from_the_daemons_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airlock serve`` run in a shared directory (``/tmp``, a group's project): another
    user who can write there plants a package named ``airlock``. ``python -m`` puts the
    working directory first on the import path, so a host started that way would run the
    planted code as the person, next to every service credential."""
    shared = tmp_path / "shared"
    planted = shared / "airlock"
    planted.mkdir(parents=True)
    ran = tmp_path / "planted-code-ran"
    (planted / "__init__.py").write_text(
        f"open({str(ran)!r}, 'w').write('as the person')\nraise SystemExit(99)\n"
    )
    monkeypatch.chdir(shared)

    async def ping() -> dict[str, object]:
        link = HostLink(ChildHost(tmp_path / "data"), timeout=60)
        try:
            return await link.request("ping")
        finally:
            await link.close()

    answer = asyncio.run(ping())
    assert not ran.exists(), "the connector host ran code planted in the working directory"
    assert isinstance(answer["pid"], int)


def test_a_daemon_started_from_python_does_not_import_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for the daemon ``airlock demo`` (``LocalDaemon``) starts: run from
    ``/tmp``, it ran a package another user planted there, as the person."""
    shared = tmp_path / "shared"
    (shared / "airlock").mkdir(parents=True)
    ran = tmp_path / "planted-code-ran"
    (shared / "airlock" / "__init__.py").write_text(
        f"open({str(ran)!r}, 'w').write('as the person')\nraise SystemExit(99)\n"
    )
    monkeypatch.chdir(shared)
    with LocalDaemon(tmp_path / "home", log=tmp_path / "daemon.log") as daemon:
        assert daemon.proc is not None
    assert not ran.exists(), "the daemon ran code planted in the working directory"


def test_sealing_the_hosts_key_does_not_read_a_link_the_host_planted(tmp_path: Path) -> None:
    """Isolated mode: ``airlock lock --set-passphrase`` runs as root and seals the host's
    ``vault.key``, in a directory the host's user owns. A compromised host makes that
    file a link to the core's ``totp.key`` (or ``/etc/shadow``): root read it through the
    link and sealed it for the host, which is sent the passphrase at every unlock, so the
    host read the TOTP secret it must never see. Now nothing changes and root is told."""
    paths = resolve_paths({"AIRLOCK_HOME": str(tmp_path / "home")})
    paths.ensure_data_dirs()
    secret = pyotp.random_base32()
    save_secret(paths.totp_file, secret)
    host_dir = paths.connectors_dir
    assert HostKeys(host_dir).load() is not None  # the host made its key on first start
    planted = host_dir / "vault.key"
    planted.unlink()
    planted.symlink_to(paths.totp_file)

    with pytest.raises(AirlockError, match="not a plain file"):
        seal(paths, "correct horse")

    assert not lock_is_on(paths), "the lock went half on"
    sealed = host_dir / SEALED_KEY_FILE
    if sealed.exists():  # what the host opens with the passphrase it is sent
        opened = Vault(sealed, key_from("correct horse")).get("vault")["key"]
        assert secret not in opened, "root sealed the TOTP secret for the connector host"
        pytest.fail("a key was sealed from a planted link")
    assert os.readlink(planted) == str(paths.totp_file)


class _Scripted:
    """A compromised host: answers every request ``ok`` with what the test scripted for
    its kind (well-formed frames, ill-shaped contents)."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.serving: asyncio.Task[None] | None = None

    async def connect(self) -> Streams:
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_unix_connection(sock=theirs)
        self.serving = asyncio.create_task(self._serve(reader, writer))
        return await asyncio.open_unix_connection(sock=ours)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            message = await frames_of(reader, MAX_REQUEST_BYTES).next()
            if "id" in message:
                ok = self.answers.get(str(message.get("kind")), {})
                write_frame(writer, {"id": message["id"], "ok": ok}, MAX_ANSWER_BYTES)

    async def restart(self) -> None:
        pass

    async def close(self) -> None:
        if self.serving is not None:
            self.serving.cancel()


@pytest.mark.parametrize(
    ("kind", "ok"),
    [
        ("listed", {"operations": {"add": "a dict, not a list"}}),
        ("listed", {"operations": 7}),
        ("check", {"check": ["not", "an", "object"]}),
        ("stored", {"services": {"mail": 3}}),
        ("remove_credentials", {"fields": 12}),
        ("close_idle", {"closed": None}),
    ],
)
def test_an_ill_shaped_answer_from_the_host_is_a_clean_service_error(
    kind: str, ok: dict[str, Any]
) -> None:
    """Each answer the core reads beyond a result model has its shape checked: a host
    that answers a list where an object belongs is a 502 ``service_error``, never a
    TypeError (a 500 "internal error") in the core."""
    toolbox = Service("tools", Toolbox, Toolbox.parse_settings({}, service="tools"))

    async def ask() -> None:
        host = ConnectorHost(HostLink(_Scripted({kind: ok}), timeout=5), {"tools": toolbox})
        try:
            await host.link.request("ping")  # connected, as a daemon's link is
            if kind == "listed":
                await host.listed("tools")
            elif kind == "check":
                await host.check("tools")
            elif kind == "stored":
                await host.stored()
            elif kind == "remove_credentials":
                await host.remove_credentials("tools")
            else:
                await host.close_idle(keep=set(), idle_seconds=1)
        finally:
            await host.link.close()

    with pytest.raises(ConnectorError, match="connector host"):
        asyncio.run(ask())


def test_root_does_not_read_a_core_file_through_a_link_when_it_seals(tmp_path: Path) -> None:
    """The same from the core's side: ``/var/lib/airlock`` is the core's user's, which may
    make ``totp.key`` a link to a file only root reads. Sealing read it through the link
    and sealed it as the "secret" for the core to open with the passphrase."""
    paths = resolve_paths({"AIRLOCK_HOME": str(tmp_path / "home")})
    paths.ensure_data_dirs()
    roots_only = tmp_path / "shadow"
    roots_only.write_text("root:$6$not-for-the-daemon$:19000:0:99999:7:::\n")
    paths.totp_file.symlink_to(roots_only)

    with pytest.raises(AirlockError, match="not a plain file"):
        seal(paths, "correct horse")
    assert not lock_is_on(paths)
    assert not (paths.data_dir / "totp.sealed").exists(), "root sealed a file it was led to"
