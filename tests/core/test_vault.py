"""The vault: credentials encrypted at rest, any change detected, never half-written."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from airlock.errors import InvalidInput, NotFound, VaultCorrupt, VaultError, VaultLocked
from airlock.security.vault import PassphraseKey, TotpKey, Vault

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTHER_SECRET = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
GMAIL = {"username": "me@example.com", "password": "correct horse battery staple"}


def fast_passphrase(text: str) -> PassphraseKey:
    """A passphrase key with cheap scrypt settings: tests unlock hundreds of times."""
    return PassphraseKey(text, log2_n=10, r=8, p=1)


@pytest.fixture
def vault_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "secrets.enc"


@pytest.fixture
def vault(vault_file: Path) -> Vault:
    opened = Vault(vault_file, TotpKey(SECRET))
    opened.set("gmail", GMAIL)
    opened.set("llm", {"api_key": "sk-or-v1-0123456789abcdef"})
    return opened


def flipped(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


# --- round trips --------------------------------------------------------------------------


def test_credentials_come_back_after_a_restart(vault: Vault, vault_file: Path) -> None:
    reopened = Vault(vault_file, TotpKey(SECRET))
    assert reopened.get("gmail") == GMAIL
    assert reopened.services() == ["gmail", "llm"]
    assert reopened.has("llm")
    assert not reopened.has("work")


def test_setting_a_service_replaces_its_fields(vault: Vault) -> None:
    vault.set("gmail", {"password": "new"})
    assert vault.get("gmail") == {"password": "new"}


def test_secret_str_values_are_stored_as_their_value(vault: Vault) -> None:
    vault.set("telegram", {"bot_token": SecretStr("123:ABC")})
    assert vault.get("telegram") == {"bot_token": "123:ABC"}


def test_removing_a_service_forgets_it(vault: Vault, vault_file: Path) -> None:
    vault.remove("llm")
    assert Vault(vault_file, TotpKey(SECRET)).services() == ["gmail"]
    with pytest.raises(NotFound):
        vault.remove("llm")


def test_an_unknown_service_is_not_found_with_a_hint(vault: Vault) -> None:
    with pytest.raises(NotFound) as caught:
        vault.get("work")
    assert "airlock credentials add work" in (caught.value.hint or "")


def test_a_vault_without_a_file_is_empty(vault_file: Path) -> None:
    empty = Vault(vault_file, TotpKey(SECRET))
    assert empty.services() == []
    assert not empty.exists()


def test_bad_credentials_are_refused_before_anything_is_written(vault: Vault) -> None:
    with pytest.raises(InvalidInput):
        vault.set("gmail", {"password": 1234})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput):
        vault.set("", {"password": "x"})
    assert vault.get("gmail") == GMAIL


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(
        st.text(min_size=1, max_size=20), st.text(max_size=200), min_size=1, max_size=6
    ),
    service=st.text(min_size=1, max_size=32),
)
def test_any_text_round_trips(tmp_path: Path, service: str, fields: dict[str, str]) -> None:
    path = tmp_path / "prop" / "secrets.enc"
    Vault(path, TotpKey(SECRET)).set(service, fields)
    assert Vault(path, TotpKey(SECRET)).get(service) == fields


def test_concurrent_writers_lose_nothing(vault: Vault, vault_file: Path) -> None:
    def add(n: int) -> None:
        vault.set(f"svc{n}", {"password": f"pw{n}"})

    threads = [threading.Thread(target=add, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reopened = Vault(vault_file, TotpKey(SECRET))
    assert {f"svc{n}" for n in range(12)} <= set(reopened.services())
    assert reopened.get("svc7") == {"password": "pw7"}


# --- what is on disk ------------------------------------------------------------------------


def test_no_credential_text_is_in_the_file(vault: Vault, vault_file: Path) -> None:
    data = vault_file.read_bytes()
    for text in [*GMAIL.values(), *GMAIL.keys(), "sk-or-v1-0123456789abcdef", "gmail", SECRET]:
        assert text.encode() not in data
        assert json.dumps(text).encode() not in data


def test_the_file_is_private_from_creation(vault: Vault, vault_file: Path) -> None:
    assert stat.S_IMODE(vault_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(vault_file.parent.stat().st_mode) == 0o700
    leftovers = [p.name for p in vault_file.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_every_write_uses_a_fresh_salt_and_nonce(vault: Vault, vault_file: Path) -> None:
    before = vault_file.read_bytes()
    vault.set("gmail", GMAIL)
    after = vault_file.read_bytes()
    assert len(before) == len(after)
    assert before[6:22] != after[6:22]
    assert before[22:34] != after[22:34]


def test_secrets_stay_out_of_reprs(vault: Vault) -> None:
    texts = [repr(vault), repr(TotpKey(SECRET)), repr(PassphraseKey("open sesame"))]
    for text in texts:
        assert SECRET not in text
        assert "open sesame" not in text


# --- wrong keys and tampering ---------------------------------------------------------------


def test_a_wrong_key_is_refused_naming_the_file(vault: Vault, vault_file: Path) -> None:
    with pytest.raises(VaultCorrupt) as caught:
        Vault(vault_file, TotpKey(OTHER_SECRET)).get("gmail")
    assert str(vault_file) in caught.value.message
    assert "password" not in caught.value.message


def test_every_flipped_byte_is_detected_naming_the_file(vault: Vault, vault_file: Path) -> None:
    # Covers each part of the file: magic, version, kdf, salt, nonce, ciphertext, tag.
    original = vault_file.read_bytes()
    for index in range(len(original)):
        vault_file.write_bytes(flipped(original, index))
        with pytest.raises(VaultCorrupt) as caught:
            Vault(vault_file, TotpKey(SECRET)).services()
        assert str(vault_file) in caught.value.message, index
    vault_file.write_bytes(original)
    assert Vault(vault_file, TotpKey(SECRET)).get("gmail") == GMAIL


def test_every_flipped_byte_of_a_passphrase_vault_is_detected(vault_file: Path) -> None:
    Vault(vault_file, fast_passphrase("open sesame")).set("gmail", GMAIL)
    original = vault_file.read_bytes()
    for index in range(len(original)):
        vault_file.write_bytes(flipped(original, index))
        with pytest.raises(VaultCorrupt):
            Vault(vault_file, fast_passphrase("open sesame")).services()


def test_a_cut_short_or_extended_file_is_detected(vault: Vault, vault_file: Path) -> None:
    original = vault_file.read_bytes()
    for size in range(len(original)):
        vault_file.write_bytes(original[:size])
        with pytest.raises(VaultCorrupt):
            Vault(vault_file, TotpKey(SECRET)).services()
    vault_file.write_bytes(original + b"\x00")
    with pytest.raises(VaultCorrupt):
        Vault(vault_file, TotpKey(SECRET)).services()


def test_a_corrupt_vault_refuses_writes_instead_of_overwriting(
    vault: Vault, vault_file: Path
) -> None:
    damaged = flipped(vault_file.read_bytes(), 40)
    vault_file.write_bytes(damaged)
    with pytest.raises(VaultCorrupt):
        vault.set("work", {"password": "x"})
    assert vault_file.read_bytes() == damaged


def test_a_writer_with_a_stale_key_cannot_clobber_a_rekeyed_vault(
    vault: Vault, vault_file: Path
) -> None:
    other_process = Vault(vault_file, TotpKey(SECRET))
    other_process.rekey(TotpKey(OTHER_SECRET))
    with pytest.raises(VaultCorrupt):
        vault.set("work", {"password": "x"})
    assert Vault(vault_file, TotpKey(OTHER_SECRET)).get("gmail") == GMAIL


# --- passphrase mode ----------------------------------------------------------------------------


def test_a_locked_vault_refuses_reads_and_writes_until_unlocked(vault_file: Path) -> None:
    Vault(vault_file, fast_passphrase("open sesame")).set("gmail", GMAIL)
    locked = Vault(vault_file)
    assert locked.locked
    with pytest.raises(VaultLocked) as caught:
        locked.get("gmail")
    assert "airlock unlock" in (caught.value.hint or "")
    with pytest.raises(VaultLocked):
        locked.set("work", {"password": "x"})
    locked.unlock(fast_passphrase("open sesame"))
    assert locked.get("gmail") == GMAIL


def test_a_wrong_passphrase_leaves_the_vault_locked(vault_file: Path) -> None:
    Vault(vault_file, fast_passphrase("open sesame")).set("gmail", GMAIL)
    locked = Vault(vault_file)
    with pytest.raises(VaultCorrupt, match="passphrase"):
        locked.unlock(fast_passphrase("open says me"))
    assert locked.locked


def test_locking_forgets_the_key(vault_file: Path) -> None:
    vault = Vault(vault_file, fast_passphrase("open sesame"))
    vault.set("gmail", GMAIL)
    vault.lock()
    with pytest.raises(VaultLocked):
        vault.get("gmail")


def test_changing_the_passphrase_keeps_the_credentials(vault_file: Path) -> None:
    vault = Vault(vault_file, fast_passphrase("old words"))
    vault.set("gmail", GMAIL)
    vault.rekey(fast_passphrase("new words"))
    assert Vault(vault_file, fast_passphrase("new words")).get("gmail") == GMAIL
    assert not vault.opens_with(fast_passphrase("old words"))
    vault.set("work", {"password": "x"})
    assert Vault(vault_file, fast_passphrase("new words")).services() == ["gmail", "work"]


def test_a_totp_vault_can_move_to_a_passphrase_and_back(vault: Vault, vault_file: Path) -> None:
    vault.rekey(fast_passphrase("open sesame"))
    assert Vault(vault_file, fast_passphrase("open sesame")).get("gmail") == GMAIL
    with pytest.raises(VaultCorrupt, match="passphrase"):
        Vault(vault_file, TotpKey(SECRET)).get("gmail")
    vault.rekey(TotpKey(OTHER_SECRET))
    assert Vault(vault_file, TotpKey(OTHER_SECRET)).get("gmail") == GMAIL


def test_a_passphrase_vault_reads_without_running_scrypt_each_time(vault_file: Path) -> None:
    vault = Vault(vault_file, PassphraseKey("open sesame"))  # default, deliberately slow scrypt
    vault.set("gmail", GMAIL)
    start = time.perf_counter()
    for _ in range(20):
        vault.get("gmail")
    assert time.perf_counter() - start < 0.5


# --- crashes ------------------------------------------------------------------------------------


def test_a_half_written_temp_file_leaves_the_vault_readable_and_writable(
    vault: Vault, vault_file: Path
) -> None:
    # What a crash between "write the temp file" and "rename it" leaves behind.
    for pid in (os.getpid(), 999_999):
        tmp = vault_file.with_name(f".{vault_file.name}.{pid}.tmp")
        tmp.write_bytes(vault_file.read_bytes()[:30])
    assert Vault(vault_file, TotpKey(SECRET)).get("gmail") == GMAIL
    vault.set("work", {"password": "x"})
    assert Vault(vault_file, TotpKey(SECRET)).services() == ["gmail", "llm", "work"]


def test_a_failed_write_leaves_the_previous_vault(vault: Vault, vault_file: Path) -> None:
    # A directory where the temp file must go makes the write fail for real.
    blocker = vault_file.with_name(f".{vault_file.name}.{os.getpid()}.tmp")
    blocker.mkdir()
    (blocker / "x").touch()
    try:
        with pytest.raises(VaultError, match="previous vault is unchanged") as caught:
            vault.set("work", {"password": "x"})
        assert str(vault_file) in caught.value.message
    finally:
        (blocker / "x").unlink()
        blocker.rmdir()
    assert Vault(vault_file, TotpKey(SECRET)).services() == ["gmail", "llm"]


_REKEY_LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from airlock.security.vault import TotpKey, Vault

    path, a, b = Path(sys.argv[1]), TotpKey(sys.argv[2]), TotpKey(sys.argv[3])
    vault = Vault(path, a)
    print("ready", flush=True)
    n = 0
    while True:
        vault.rekey(b if n % 2 == 0 else a)
        n += 1
    """
)


@pytest.mark.parametrize("delay", [0.01, 0.03, 0.05, 0.08, 0.13, 0.21])
def test_a_crash_during_rekey_leaves_the_old_or_the_new_vault(
    vault: Vault, vault_file: Path, delay: float
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _REKEY_LOOP, str(vault_file), SECRET, OTHER_SECRET],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    time.sleep(delay)  # let it get somewhere into a rekey; this is not a wait for a result
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    readable = [
        key_secret
        for key_secret in (SECRET, OTHER_SECRET)
        if Vault(vault_file, TotpKey(key_secret)).opens_with(TotpKey(key_secret))
    ]
    assert len(readable) == 1
    survivor = Vault(vault_file, TotpKey(readable[0]))
    assert survivor.get("gmail") == GMAIL
    survivor.set("work", {"password": "x"})
    assert survivor.services() == ["gmail", "llm", "work"]
