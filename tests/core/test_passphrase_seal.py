"""Sealing the TOTP secret and the vault under a passphrase, crash-safe, and the bound
on wrong passphrases."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest

from airlock.common.clock import FakeClock
from airlock.daemon.keeper import MAX_WRONG, WINDOW, SecretKeeper
from airlock.errors import VaultCorrupt
from airlock.passphrase import (
    DaemonLocked,
    WrongPassphrase,
    key_from,
    lock_is_on,
    open_sealed,
    seal,
    sealed_file,
)
from airlock.security.totp import save_secret
from airlock.security.vault import PassphraseKey, TotpKey, Vault
from airlock.settings.paths import AirlockPaths, resolve_paths

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def paths(tmp_path: Path) -> AirlockPaths:
    found = resolve_paths({"AIRLOCK_HOME": str(tmp_path)})
    found.ensure_data_dirs()
    return found


@pytest.fixture
def secret(paths: AirlockPaths) -> str:
    value = pyotp.random_base32()
    save_secret(paths.totp_file, value)
    Vault(paths.vault_file, TotpKey(value)).set("mail", {"password": "hunter2"})
    return value


def test_sealing_leaves_no_usable_secret_and_the_passphrase_opens_both(
    paths: AirlockPaths, secret: str
) -> None:
    seal(paths, PASSPHRASE)
    assert lock_is_on(paths)
    assert not paths.totp_file.exists()
    with pytest.raises(VaultCorrupt):
        Vault(paths.vault_file, TotpKey(secret)).services()
    opened, key = open_sealed(paths, PASSPHRASE)
    assert opened == secret
    assert Vault(paths.vault_file, key).get("mail") == {"password": "hunter2"}
    with pytest.raises(WrongPassphrase):
        open_sealed(paths, "wrong")


def test_a_crash_before_the_vault_was_re_keyed_is_finished_by_unlock(
    paths: AirlockPaths, secret: str
) -> None:
    Vault(sealed_file(paths), PassphraseKey(PASSPHRASE)).set("totp", {"secret": secret})
    paths.totp_file.unlink()  # step 1 and 3 done, the vault still under the secret
    _, key = open_sealed(paths, PASSPHRASE)
    assert Vault(paths.vault_file, key).get("mail") == {"password": "hunter2"}


def test_empty_or_huge_passphrases_are_refused() -> None:
    for bad in ("", "x" * 1025):
        with pytest.raises(Exception, match="passphrase is 1 to 1024"):
            key_from(bad)


def test_wrong_passphrases_are_bounded_per_window(
    paths: AirlockPaths, secret: str, clock: FakeClock
) -> None:
    seal(paths, PASSPHRASE)
    keeper = SecretKeeper(paths, clock)
    assert keeper.locked
    for _ in range(MAX_WRONG):
        with pytest.raises(WrongPassphrase):
            keeper.unlock("guess")
    with pytest.raises(DaemonLocked):
        keeper.unlock(PASSPHRASE)  # even the right one waits
    clock.advance(WINDOW + 1)
    keeper.unlock(PASSPHRASE)
    assert not keeper.locked
    assert keeper.read()[0] == secret
