"""The connector host attacked from outside the protocol: by another local user who can
write the directory the daemon was started in, and by a compromised host that plants
links in its own directory for root to follow.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pyotp
import pytest

from airlock.connector_host.keys import SEALED_KEY_FILE, HostKeys
from airlock.connector_host.link import ChildHost, HostLink
from airlock.errors import AirlockError
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
