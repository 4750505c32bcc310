"""The connector host's vault and the key of its own (docs/security.md).

The host keeps the service credentials in ``vault.enc`` under a random key in
``vault.key`` (0600, the host's user only). With the passphrase lock on, that key lives
only sealed in ``vault.key.sealed`` (the passphrase's scrypt key wraps it), and the host
starts locked until the core passes on the passphrase ``airlock unlock`` received.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from airlock.common.files import (
    NotAPlainFile,
    atomic_write_private,
    ensure_private_dir,
    fsync_dir,
    read_plain_file,
)
from airlock.errors import AirlockError
from airlock.security.vault import PassphraseKey, StoredKey, Vault

__all__ = ["HostKeys", "plain_host_key", "seal_host_key"]

VAULT_FILE = "vault.enc"
KEY_FILE = "vault.key"
SEALED_KEY_FILE = "vault.key.sealed"
_ENTRY, _FIELD = "vault", "key"


class HostKeys:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def vault_file(self) -> Path:
        return self.directory / VAULT_FILE

    def secret_files(self) -> list[Path]:
        """The vault and its key, plain or sealed (whether they exist yet or not)."""
        return [self.directory / name for name in (VAULT_FILE, KEY_FILE, SEALED_KEY_FILE)]

    @property
    def sealed(self) -> bool:
        """The key is sealed by the passphrase (and no plain key takes precedence)."""
        return (self.directory / SEALED_KEY_FILE).exists() and not (
            self.directory / KEY_FILE
        ).exists()

    def load(self) -> StoredKey | None:
        """The vault's key, made on first use; None while the passphrase seals it."""
        if self.sealed:
            return None
        path = self.directory / KEY_FILE
        if not path.exists():
            ensure_private_dir(self.directory)
            atomic_write_private(path, secrets.token_hex(32).encode("ascii"))
            fsync_dir(self.directory)
        return StoredKey(path.read_text(encoding="ascii"))

    def unlock(self, key: PassphraseKey) -> StoredKey:
        """The sealed key, opened with the passphrase's key; VaultError when it does not
        open."""
        sealed = Vault(self.directory / SEALED_KEY_FILE, key)
        return StoredKey(sealed.get(_ENTRY)[_FIELD])


def plain_host_key(directory: Path) -> str | None:
    """The plain key in *directory*, None when there is none. In isolated mode root reads
    it from a directory the host's user owns, where a compromised host may have put a
    link (to the core's ``totp.key``, to ``/etc/shadow``) for root to read and seal for
    it: only a plain file of one name is read."""
    path = directory / KEY_FILE
    try:
        return read_plain_file(path, 4096, one_name=True).decode("ascii")
    except FileNotFoundError:
        return None
    except (NotAPlainFile, UnicodeDecodeError):
        raise AirlockError(
            f"{path} is not a plain file of the connector host's key (a link?): not sealing it",
            hint="check what put it there (the connector host may be compromised)",
        ) from None


def seal_host_key(directory: Path, key: PassphraseKey) -> bool:
    """Seal the host's vault key with the passphrase's *key*: written sealed, then the
    plain file removed. False when there is no plain key to seal."""
    value = plain_host_key(directory)
    if value is None:
        return False
    Vault(directory / SEALED_KEY_FILE, key).set(_ENTRY, {_FIELD: value})
    (directory / KEY_FILE).unlink()
    fsync_dir(directory)
    return True
