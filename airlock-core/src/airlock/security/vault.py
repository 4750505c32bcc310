"""The credentials vault: ``secrets.enc`` (see docs/security.md).

File format (version 1), all integers unsigned bytes::

    "ALKV"  version=1  kdf  <kdf block>  nonce[12]  ciphertext+tag
    kdf 1 (TOTP-derived):  salt[16]
    kdf 2 (passphrase):    salt[16] log2_n r p  wrap_nonce[12] wrapped_key[48]

Everything before the ciphertext is the *header* and is the associated data of the
AES-256-GCM encryption, so a changed header byte fails decryption just like a changed
ciphertext byte. The plaintext is the JSON ``{service: {field: value}}``.

Keys:

* ``TotpKey`` (default): HKDF-SHA256 over the TOTP secret with the file's salt. A
  fresh salt and nonce on every write.
* ``PassphraseKey``: scrypt turns the passphrase into a key-encryption key that wraps a
  random data key (AES-GCM, bound to the header prefix). Changing the passphrase
  re-wraps the same data key; scrypt runs once per unlock, not per read. A vault built
  without a key is *locked*: every read and write raises ``VaultLocked`` until
  ``unlock``.

Every write replaces the file atomically (``files.atomic_write_private``: temp file
0600, fsync, rename, fsync the directory), so a crash leaves the old vault or the new
one, never a mix, and re-keying is one such write. A read-modify-write holds an
in-process lock and an ``flock`` on ``.<name>.lock``, and re-reads (and so
re-authenticates) the file first, so a writer holding a stale key fails instead of
overwriting a vault someone else re-keyed.

A wrong key, a flipped byte or a truncated file raises ``VaultCorrupt`` naming the file;
nothing is returned until the whole file authenticates. Secret values never appear in
a repr, a log line or an error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import struct
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from airlock.common.files import (
    PRIVATE_FILE,
    atomic_write_private,
    ensure_private_dir,
    remove_stale_temp_files,
)
from airlock.errors import InvalidInput, NotFound, VaultCorrupt, VaultError, VaultLocked
from airlock.security.vault_keys import (
    KDF_PASSPHRASE,
    KDF_TOTP,
    KEY_LEN,
    KeySource,
    PassphraseKey,
    StoredKey,
    TotpKey,
)

__all__ = ["KeySource", "PassphraseKey", "StoredKey", "TotpKey", "Vault"]

MAGIC = b"ALKV"
FORMAT_VERSION = 1
SALT_LEN = 16
NONCE_LEN = 12
TAG_LEN = 16
_WRAPPED_LEN = KEY_LEN + TAG_LEN
_SCRYPT_LIMITS = {"log2_n": (10, 20), "r": (1, 16), "p": (1, 4)}

Credentials = dict[str, dict[str, str]]


@dataclass(frozen=True, repr=False)
class _Wrapping:
    """The passphrase block of a header, plus the data key it unwraps to (in memory only)."""

    salt: bytes
    log2_n: int
    r: int
    p: int
    wrap_nonce: bytes
    wrapped: bytes
    data_key: bytes

    def __repr__(self) -> str:
        return "_Wrapping(...)"

    def block(self) -> bytes:
        return (
            self.salt
            + struct.pack("BBB", self.log2_n, self.r, self.p)
            + self.wrap_nonce
            + self.wrapped
        )


@dataclass(frozen=True)
class _Parsed:
    header: bytes
    kdf: int
    salt: bytes
    nonce: bytes
    ciphertext: bytes
    scrypt: tuple[int, int, int] | None = None
    wrap_nonce: bytes = b""
    wrapped: bytes = b""


def _wrap_aad(kdf_prefix: bytes) -> bytes:
    return b"airlock vault v1 data key|" + kdf_prefix


class Vault:
    """Credentials by service name, encrypted at rest in one file."""

    def __init__(self, path: Path, key: KeySource | None = None) -> None:
        self.path = path
        # A crash during a write leaves a temp copy (ciphertext) behind: never reused.
        remove_stale_temp_files(path)
        self._key = key
        self._wrapping: _Wrapping | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Vault({str(self.path)!r}, locked={self.locked})"

    # -- state ----------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        return self._key is None

    def exists(self) -> bool:
        return self.path.exists()

    def unlock(self, key: KeySource) -> None:
        """Use *key* from now on, after checking it opens the file (if there is one)."""
        with self._lock:
            previous, previous_wrapping = self._key, self._wrapping
            self._key, self._wrapping = key, None
            try:
                if self.path.exists():
                    self._read()
            except BaseException:
                self._key, self._wrapping = previous, previous_wrapping
                raise

    def lock(self) -> None:
        """Forget the key: reads and writes raise ``VaultLocked`` until ``unlock``."""
        with self._lock:
            self._key, self._wrapping = None, None

    def opens_with(self, key: KeySource) -> bool:
        """Whether *key* decrypts the file (used to finish an interrupted re-key)."""
        probe = Vault(self.path, key)
        try:
            probe._read()
        except VaultError:
            return False
        return True

    # -- credentials ------------------------------------------------------------------

    def services(self) -> list[str]:
        with self._lock:
            return sorted(self._read())

    def has(self, service: str) -> bool:
        with self._lock:
            return service in self._read()

    def get(self, service: str) -> dict[str, str]:
        """The fields of *service*; ``NotFound`` when it has no credentials."""
        with self._lock:
            data = self._read()
        if service not in data:
            raise NotFound(
                f"no credentials for service {service[:40]!r}",
                hint=f"run `airlock credentials add {service[:40]}`",
            )
        return dict(data[service])

    def set(self, service: str, fields: Mapping[str, str | SecretStr]) -> None:
        """Store *fields* as the credentials of *service*, replacing what was there."""
        clean: dict[str, str] = {}
        for name, value in fields.items():
            if not isinstance(name, str) or not name:
                raise InvalidInput("credential field names must be non-empty text")
            secret = value.get_secret_value() if isinstance(value, SecretStr) else value
            if not isinstance(secret, str):
                raise InvalidInput(f"credential field {name[:40]!r} must be text", field=name)
            clean[name] = secret
        if not service:
            raise InvalidInput("the service name is empty", field="service")
        with self._update() as data:
            data[service] = clean

    def remove(self, service: str) -> None:
        with self._update() as data:
            if service not in data:
                raise NotFound(f"no credentials for service {service[:40]!r}")
            del data[service]

    def rekey(self, new_key: KeySource) -> None:
        """Re-encrypt everything under *new_key* in one atomic replace of the file.

        A crash during the call leaves the old file (readable with the old key) or the
        new one (readable with the new key). Passphrase to passphrase keeps the data key
        and only re-wraps it; any change of kind makes a new data key.
        """
        with self._exclusive():
            data = self._read()
            keep = self._wrapping.data_key if self._wrapping is not None else None
            self._write(data, new_key, keep_data_key=keep)
            self._key = new_key

    # -- file format ------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock:
            ensure_private_dir(self.path.parent)
            lock_path = self.path.with_name(f".{self.path.name}.lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _update(self) -> Iterator[Credentials]:
        with self._exclusive():
            data = self._read()
            yield data
            key = self._require_key()
            self._write(data, key, keep_data_key=None)

    def _require_key(self) -> KeySource:
        if self._key is None:
            raise VaultLocked(f"{self.path} is locked", hint="run `airlock unlock`")
        return self._key

    def _corrupt(self, why: str) -> VaultCorrupt:
        return VaultCorrupt(
            f"{self.path}: {why}",
            hint="check the key (TOTP secret or passphrase); restore the file from a backup "
            "if it was changed",
        )

    def _read(self) -> Credentials:
        key = self._require_key()
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise VaultError(f"{self.path}: cannot be read: {exc.strerror}") from None
        parsed = self._parse(blob)
        if parsed.kdf != key.kdf:
            kinds = {KDF_TOTP: "the TOTP secret", KDF_PASSPHRASE: "a passphrase"}
            raise self._corrupt(
                f"encrypted with {kinds[parsed.kdf]}, but {kinds[key.kdf]} was given "
                "(wrong key setting, or the file was changed)"
            )
        data_key = self._data_key(parsed, key)
        try:
            plaintext = AESGCM(data_key).decrypt(parsed.nonce, parsed.ciphertext, parsed.header)
        except InvalidTag:
            raise self._corrupt("cannot be decrypted: wrong key, or the file was changed") from None
        return self._decode(plaintext)

    def _parse(self, blob: bytes) -> _Parsed:
        if len(blob) < 6 or blob[:4] != MAGIC:
            raise self._corrupt("not an Airlock vault (bad magic)")
        version, kdf = blob[4], blob[5]
        if version != FORMAT_VERSION:
            raise self._corrupt(
                f"vault format {version} is not supported (written by a newer Airlock, or damaged)"
            )
        if kdf not in (KDF_TOTP, KDF_PASSPHRASE):
            raise self._corrupt(f"unknown key derivation {kdf} (damaged file?)")
        block = SALT_LEN + (3 + NONCE_LEN + _WRAPPED_LEN if kdf == KDF_PASSPHRASE else 0)
        if len(blob) < 6 + block + NONCE_LEN + TAG_LEN:
            raise self._corrupt("truncated")
        pos = 6
        salt = blob[pos : pos + SALT_LEN]
        pos += SALT_LEN
        scrypt: tuple[int, int, int] | None = None
        wrap_nonce = wrapped = b""
        if kdf == KDF_PASSPHRASE:
            scrypt = (blob[pos], blob[pos + 1], blob[pos + 2])
            pos += 3
            wrap_nonce = blob[pos : pos + NONCE_LEN]
            pos += NONCE_LEN
            wrapped = blob[pos : pos + _WRAPPED_LEN]
            pos += _WRAPPED_LEN
        nonce = blob[pos : pos + NONCE_LEN]
        pos += NONCE_LEN
        return _Parsed(
            header=blob[:pos],
            kdf=kdf,
            salt=salt,
            nonce=nonce,
            ciphertext=blob[pos:],
            scrypt=scrypt,
            wrap_nonce=wrap_nonce,
            wrapped=wrapped,
        )

    def _data_key(self, parsed: _Parsed, key: KeySource) -> bytes:
        if isinstance(key, TotpKey):
            return key.derive(parsed.salt)
        assert parsed.scrypt is not None
        log2_n, r, p = parsed.scrypt
        cached = self._wrapping
        if (
            cached is not None
            and cached.salt == parsed.salt
            and (cached.log2_n, cached.r, cached.p) == parsed.scrypt
            and cached.wrap_nonce == parsed.wrap_nonce
            and cached.wrapped == parsed.wrapped
        ):
            return cached.data_key
        for name, value in zip(("log2_n", "r", "p"), parsed.scrypt, strict=True):
            low, high = _SCRYPT_LIMITS[name]
            if not low <= value <= high:
                raise self._corrupt(f"scrypt parameter {name}={value} out of range (damaged file?)")
        prefix = parsed.header[: 6 + SALT_LEN + 3]
        try:
            data_key = AESGCM(key.kek(parsed.salt, log2_n, r, p)).decrypt(
                parsed.wrap_nonce, parsed.wrapped, _wrap_aad(prefix)
            )
        except InvalidTag:
            raise self._corrupt(
                "cannot be decrypted: wrong passphrase, or the file was changed"
            ) from None
        self._wrapping = _Wrapping(
            parsed.salt, log2_n, r, p, parsed.wrap_nonce, parsed.wrapped, data_key
        )
        return data_key

    def _decode(self, plaintext: bytes) -> Credentials:
        try:
            raw = json.loads(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise self._corrupt("decrypted, but the content is not valid JSON") from None
        valid = isinstance(raw, dict) and all(
            isinstance(service, str)
            and isinstance(fields, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
            for service, fields in raw.items()
        )
        if not valid:
            raise self._corrupt("decrypted, but the content has the wrong shape")
        return raw  # type: ignore[no-any-return]

    def _write(self, data: Credentials, key: KeySource, *, keep_data_key: bytes | None) -> None:
        prefix = MAGIC + bytes((FORMAT_VERSION, key.kdf))
        if isinstance(key, TotpKey):
            salt = secrets.token_bytes(SALT_LEN)
            header = prefix + salt
            data_key = key.derive(salt)
            wrapping = None
        else:
            wrapping = self._wrapping if keep_data_key is None else None
            if wrapping is None:
                wrapping = self._wrap(key, keep_data_key or AESGCM.generate_key(bit_length=256))
            header = prefix + wrapping.block()
            data_key = wrapping.data_key
        nonce = secrets.token_bytes(NONCE_LEN)
        header += nonce
        plaintext = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
        blob = header + AESGCM(data_key).encrypt(nonce, plaintext, header)
        ensure_private_dir(self.path.parent)
        try:
            atomic_write_private(self.path, blob)
        except OSError as exc:
            raise VaultError(
                f"{self.path}: cannot be written: {exc.strerror}; the previous vault is unchanged"
            ) from None
        self._wrapping = wrapping

    def _wrap(self, key: PassphraseKey, data_key: bytes) -> _Wrapping:
        salt = secrets.token_bytes(SALT_LEN)
        params = struct.pack("BBB", key.log2_n, key.r, key.p)
        prefix = MAGIC + bytes((FORMAT_VERSION, KDF_PASSPHRASE)) + salt + params
        wrap_nonce = secrets.token_bytes(NONCE_LEN)
        kek = key.kek(salt, key.log2_n, key.r, key.p)
        wrapped = AESGCM(kek).encrypt(wrap_nonce, data_key, _wrap_aad(prefix))
        return _Wrapping(salt, key.log2_n, key.r, key.p, wrap_nonce, wrapped, data_key)
