"""The configuration example of the original Airlock README still loads, each old key read
as today's with a notice saying what to write instead; what cannot be honoured is refused
with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airlock.errors import ConfigError
from airlock.settings.config import load_config

OLD_EXAMPLE = """\
totp:
  issuer: Airlock
  digits: 6
  period: 30
tokens:
  default_ttl_minutes: 60
  max_ttl_minutes: 480
notifications:
  provider: telegram
  chat_id: 123456789
permissions:
  default: read
"""


def test_the_old_example_loads_as_todays_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(OLD_EXAMPLE)
    config = load_config(path)
    assert (config.sessions.default_ttl, config.sessions.max_ttl) == (3600, 480 * 60)
    assert config.notifiers["telegram"] == {"chat_id": 123456789, "user_id": 123456789}
    assert config.approvals.notifiers == ["console", "telegram"]
    assert (config.totp.issuer, config.totp.digits, config.totp.period) == ("Airlock", 6, 30)


def test_each_old_key_gets_a_one_line_notice_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(OLD_EXAMPLE)
    result = subprocess.run(
        [sys.executable, "-m", "airlock", "status", "--json"],
        env={**os.environ, "AIRLOCK_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    notices = result.stderr.splitlines()
    assert any(
        "tokens.default_ttl_minutes is now sessions.default_ttl: "
        "write `sessions: {default_ttl: 60m}`" in n
        for n in notices
    )
    assert any("tokens.max_ttl_minutes" in n and "max_ttl: 480m" in n for n in notices)
    assert any("notifications is now notifiers.telegram" in n for n in notices)
    assert any("permissions.default: read" in n and "remove the line" in n for n in notices)


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("permissions: {default: write}\n", "permissions.default", "cannot be honoured"),
        ("notifications: {provider: email, chat_id: 1}\n", "notifications.provider", "email"),
        ("tokens: {default_ttl_minutes: -5}\n", "tokens.default_ttl_minutes", "positive"),
        ("tokens: {refresh: true}\n", "tokens.refresh", "unknown key"),
        ("totp: {digits: 10}\n", "totp.digits", "less than or equal to 8"),
        ("vault: {key: passphrase}\n", "vault.key", "cannot be set here"),
        ("vault: {key: totp, cipher: aes}\n", "vault.cipher", "unknown key"),
    ],
)
def test_what_cannot_be_honoured_is_refused_with_the_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.field == key
    assert reason in caught.value.message


def test_vault_key_totp_loads_with_a_notice_to_remove_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("vault: {key: totp}\n")
    config = load_config(path)
    assert "vault" not in type(config).model_fields
    assert any("vault.key: totp" in r.getMessage() for r in caplog.records)
