"""The passphrase lock: the TOTP secret and the vault encrypted under a key derived from a
passphrase (scrypt), so the files are useless to an agent that can read them.

Turned on by ``airlock lock --set-passphrase`` (or ``airlock totp setup --passphrase``):

1. ``totp.sealed`` is written: a vault file (``airlock.security.vault`` format, passphrase key)
   holding the secret;
2. ``secrets.enc`` is re-keyed from the TOTP-derived key to the passphrase;
3. ``totp.key`` is removed.

A crash between the steps is safe: while ``totp.key`` exists the lock is off and the
vault still opens with the secret; once it is gone, ``airlock unlock`` opens the sealed
secret and finishes re-keying a vault still under the secret. The daemon starts locked
and holds the secret and the vault key in memory only after ``airlock unlock``.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from airlock.common.files import fsync_dir
from airlock.errors import AirlockError, InvalidInput, VaultError
from airlock.security.vault import PassphraseKey, TotpKey, Vault
from airlock.settings.paths import AirlockPaths

MAX_CHARS = 1024
_ENTRY, _FIELD = "totp", "secret"


class DaemonLocked(AirlockError):
    status = 423
    code = "airlock_locked"
    exit_code = 3

    def __init__(self, message: str = "Airlock is locked by its passphrase", **kw: str) -> None:
        kw.setdefault("hint", "the person runs `airlock unlock`")
        super().__init__(message, **kw)


class WrongPassphrase(AirlockError):
    status = 403
    code = "wrong_passphrase"
    exit_code = 3


def sealed_file(paths: AirlockPaths) -> Path:
    return paths.data_dir / "totp.sealed"


def lock_is_on(paths: AirlockPaths) -> bool:
    """The secret is sealed (and no plain ``totp.key`` takes precedence)."""
    return sealed_file(paths).exists() and not paths.totp_file.exists()


def key_from(passphrase: str) -> PassphraseKey:
    if not passphrase or len(passphrase) > MAX_CHARS:
        raise InvalidInput(f"a passphrase is 1 to {MAX_CHARS} characters", field="passphrase")
    return PassphraseKey(passphrase)


def seal(paths: AirlockPaths, passphrase: str) -> None:
    """Turn the lock on (the order of the module docstring)."""
    from airlock.security.totp import load_secret

    if lock_is_on(paths):
        raise AirlockError("the passphrase lock is already on", hint="`airlock unlock` opens it")
    from airlock.connector_host.keys import plain_host_key

    plain_host_key(paths.connectors_dir)  # a link planted there is refused before any step
    secret = load_secret(paths.totp_file)
    key = key_from(passphrase)
    Vault(sealed_file(paths), key).set(_ENTRY, {_FIELD: secret})
    if paths.vault_file.exists():
        Vault(paths.vault_file, TotpKey(secret)).rekey(key)
    _seal_connector_host_key(paths, key)
    paths.totp_file.unlink()
    fsync_dir(paths.data_dir)


def _seal_connector_host_key(paths: AirlockPaths, key: PassphraseKey) -> None:
    """The connector host's vault key is sealed by the same passphrase (its owner stays
    the owner: in isolated mode root seals a file the host's user must read)."""
    import os

    from airlock.connector_host.keys import SEALED_KEY_FILE, seal_host_key

    directory = paths.connectors_dir
    if not seal_host_key(directory, key):
        return
    owner = directory.stat()
    if os.geteuid() == 0 and owner.st_uid != 0:
        # Never through a link the host's user swapped in meanwhile (its directory).
        os.chown(directory / SEALED_KEY_FILE, owner.st_uid, owner.st_gid, follow_symlinks=False)


def reseal(paths: AirlockPaths, key: PassphraseKey, secret: str) -> None:
    """Replace the sealed secret with *secret* under the same passphrase (*key*, the one the
    daemon was unlocked with). One atomic write: the vault, keyed by the passphrase, does
    not change."""
    if not lock_is_on(paths):
        raise AirlockError("the passphrase lock is not on: nothing to re-seal")
    Vault(sealed_file(paths), key).set(_ENTRY, {_FIELD: secret})


def open_sealed(paths: AirlockPaths, passphrase: str) -> tuple[str, PassphraseKey]:
    """The secret and the key, or ``WrongPassphrase``; re-keys a vault a crash left
    under the secret (step 2 of turning the lock on)."""
    key = key_from(passphrase)
    try:
        secret = Vault(sealed_file(paths), key).get(_ENTRY)[_FIELD]
    except VaultError:
        raise WrongPassphrase(
            "wrong passphrase (or a changed totp.sealed)", hint="try again"
        ) from None
    if paths.vault_file.exists():
        vault = Vault(paths.vault_file, TotpKey(secret))
        if vault.opens_with(TotpKey(secret)):
            vault.rekey(key)
    return secret, key


def read_passphrase(*, confirm: bool, prompt: str = "Passphrase") -> str:
    """From a hidden prompt (twice when *confirm*) or the next line of stdin; never argv."""
    from airlock.ptrace import refuse_ptrace

    refuse_ptrace()  # no process of this user reads it out of this one's memory
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        key_from(line)
        return line
    first = getpass.getpass(f"{prompt}: ")
    if confirm and getpass.getpass(f"{prompt} again: ") != first:
        raise InvalidInput("the two passphrases differ", field="passphrase")
    key_from(first)
    return first
