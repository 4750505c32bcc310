"""Where a vault's key comes from (the file format is in :mod:`airlock.security.vault`)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import SecretStr

from airlock.errors import InvalidInput

__all__ = ["KeySource", "PassphraseKey", "StoredKey", "TotpKey"]

KDF_TOTP = 1
KDF_PASSPHRASE = 2
KEY_LEN = 32
_HKDF_INFO = b"airlock vault v1: key from TOTP secret"


class TotpKey:
    """The default key source: derived from the TOTP secret (``totp.key``)."""

    kdf = KDF_TOTP

    def __init__(self, secret: str) -> None:
        if not secret.strip():
            raise InvalidInput("the TOTP secret is empty")
        self._secret = SecretStr(secret.strip().upper())

    def __repr__(self) -> str:
        return "TotpKey(secret=**********)"

    def derive(self, salt: bytes) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_LEN, salt=salt, info=_HKDF_INFO)
        return hkdf.derive(self._secret.get_secret_value().encode("utf-8"))


class StoredKey(TotpKey):
    """A random key kept in a file of its own (the connector host's ``vault.key``),
    derived like :class:`TotpKey`: the host never sees the TOTP secret."""

    def __repr__(self) -> str:
        return "StoredKey(key=**********)"


class PassphraseKey:
    """A passphrase; scrypt (``2**log2_n``, r, p) makes the key-encryption key."""

    kdf = KDF_PASSPHRASE

    def __init__(self, passphrase: str, *, log2_n: int = 17, r: int = 8, p: int = 1) -> None:
        if not passphrase:
            raise InvalidInput("the passphrase is empty", field="passphrase")
        self._passphrase = SecretStr(passphrase)
        self.log2_n, self.r, self.p = log2_n, r, p

    def __repr__(self) -> str:
        return "PassphraseKey(passphrase=**********)"

    def kek(self, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
        scrypt = Scrypt(salt=salt, length=KEY_LEN, n=2**log2_n, r=r, p=p)
        return scrypt.derive(self._passphrase.get_secret_value().encode("utf-8"))


KeySource = TotpKey | PassphraseKey
