"""Where the daemon's TOTP secret and vault key come from: ``totp.key``, or, with the
passphrase lock on, ``totp.sealed`` opened by ``airlock unlock`` (docs/security.md).

The files are looked at again whenever they change, so ``airlock totp setup|reset`` and
``airlock lock --set-passphrase`` take effect in a running daemon: setting a passphrase
locks it until ``airlock unlock``. A secret replaced through the daemon while the lock is
on (:meth:`SecretKeeper.reseal`) is sealed under the passphrase it was unlocked with, and
the daemon stays unlocked.
"""

from __future__ import annotations

from pathlib import Path

from airlock.common.clock import Clock
from airlock.passphrase import (
    DaemonLocked,
    WrongPassphrase,
    lock_is_on,
    open_sealed,
    reseal,
    sealed_file,
)
from airlock.security.vault import KeySource, PassphraseKey, TotpKey
from airlock.settings.paths import AirlockPaths

MAX_WRONG = 5
"""Wrong passphrases allowed within WINDOW; then unlocking waits (each try costs scrypt)."""
WINDOW = 900.0

Found = tuple[str | None, KeySource | None]


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


class SecretKeeper:
    def __init__(self, paths: AirlockPaths, clock: Clock) -> None:
        self.paths = paths
        self._clock = clock
        self._seen: tuple[float | None, float | None, bool] | None = None
        self._opened: tuple[str, KeySource, float | None] | None = None
        self._wrong: list[float] = []

    def _state(self) -> tuple[float | None, float | None, bool]:
        return (_mtime(self.paths.totp_file), _mtime(sealed_file(self.paths)), self.opened)

    @property
    def opened(self) -> bool:
        """Unlocked, for the sealed file as it is now (a new passphrase locks again)."""
        return (
            self._opened is not None
            and self._opened[2] == _mtime(sealed_file(self.paths))
            and lock_is_on(self.paths)
        )

    @property
    def locked(self) -> bool:
        return lock_is_on(self.paths) and not self.opened

    def read(self) -> Found:
        """The secret and the vault key as things are now (None, None: none usable)."""
        from airlock.security.totp import load_secret

        self._seen = self._state()
        if self.paths.totp_file.exists():
            secret = load_secret(self.paths.totp_file)
            return secret, TotpKey(secret)
        if self.opened and self._opened is not None:
            return self._opened[0], self._opened[1]
        return None, None

    def changed(self) -> bool:
        return self._state() != self._seen

    def unlock(self, passphrase: str) -> None:
        """Open the sealed secret (slow: scrypt); ``WrongPassphrase`` counts a try."""
        from airlock.errors import AirlockError

        if not lock_is_on(self.paths):
            raise AirlockError(
                "the passphrase lock is not on", hint="airlock lock --set-passphrase"
            )
        now = self._clock.now()
        self._wrong = [t for t in self._wrong if now - t < WINDOW]
        if len(self._wrong) >= MAX_WRONG:
            raise DaemonLocked(
                f"{MAX_WRONG} wrong passphrases: unlocking waits",
                hint=f"try again in {int(WINDOW - (now - self._wrong[0])) // 60 + 1} min",
            )
        try:
            secret, key = open_sealed(self.paths, passphrase)
        except WrongPassphrase:
            self._wrong.append(now)
            raise
        self._opened = (secret, key, _mtime(sealed_file(self.paths)))
        self._seen = None

    def reseal(self, secret: str) -> None:
        """Seal *secret* in place of the current one under the passphrase this daemon was
        unlocked with (slow: scrypt), and keep using it unlocked. ``DaemonLocked`` when the
        lock is closed: only an unlocked daemon holds the passphrase's key."""
        if not self.opened or self._opened is None:
            raise DaemonLocked()
        key = self._opened[1]
        if not isinstance(key, PassphraseKey):
            raise DaemonLocked()
        reseal(self.paths, key, secret)
        self._opened = (secret, key, _mtime(sealed_file(self.paths)))
        self._seen = None
