"""config.yaml and AIRLOCK_ variables: defaults, overrides, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.errors import ConfigError, InvalidInput
from airlock.framework.connectors import Connector
from airlock.gateway.services import resolve_service
from airlock.settings.config import load_config, validated_config
from airlock.settings.config_plain import plain_services
from airlock.settings.durations import parse_duration
from airlock.settings.paths import Mode, resolve_paths

MAIL = "services: {mail: {connector: maildir, path: /tmp}}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_a_missing_file_means_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "config.yaml")
    assert config.sessions.default_ttl == 3600
    assert config.approvals.max_failures == 5
    assert config.services == {}


def test_durations_are_read_as_people_write_them(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "sessions: {default_ttl: 90s, max_ttl: 8h}\n"))
    assert (config.sessions.default_ttl, config.sessions.max_ttl) == (90, 8 * 3600)


def test_environment_variables_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRLOCK_SESSIONS__DEFAULT_TTL", "30m")
    monkeypatch.setenv("AIRLOCK_APPROVALS__MAX_FAILURES", "3")
    config = load_config(write(tmp_path, "sessions: {default_ttl: 90s}\n"))
    assert config.sessions.default_ttl == 1800
    assert config.approvals.max_failures == 3


def test_environment_variables_take_json_where_a_key_holds_structure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AIRLOCK_APPROVALS__NOTIFIERS": '["console", "telegram"]',
        "AIRLOCK_TOTP": '{"digits": 8}',
        "airlock_totp__period": "60",  # any case
        "AIRLOCK_SERVICES__WORK__CONNECTOR": "imap",
        "AIRLOCK_SERVICES__WORK__PORT": "993",
        "AIRLOCK_DASHBOARD__LISTEN": "[::1]:8410",  # not JSON: text
        "AIRLOCK_NOTIFIERS__TELEGRAM__CHAT_ID": "12345",
        "AIRLOCK_HOME": str(tmp_path),  # not a section: not config
        "AIRLOCK_NOPE__X": "1",
    }.items():
        monkeypatch.setenv(name, value)
    config = load_config(write(tmp_path, f"totp: {{issuer: File}}\n{MAIL}"))
    assert config.approvals.notifiers == ["console", "telegram"]
    assert (config.totp.issuer, config.totp.digits, config.totp.period) == ("File", 8, 60)
    assert set(config.services) == {"mail", "work"}
    assert config.services["work"].settings == {"port": 993}
    assert config.dashboard.listen == "[::1]:8410"
    assert config.notifiers == {"telegram": {"chat_id": "12345"}}


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [("AIRLOCK_TOTP__COLOUR", "blue", "totp.colour"), ("AIRLOCK_SESSIONS", "soon", "sessions")],
)
def test_a_wrong_environment_variable_is_refused_like_a_wrong_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, key: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.yaml")
    assert f"key {key}" in info.value.message
    # The variable is named, not the file (which may not exist): that is what to fix.
    assert info.value.message.startswith(f"{name}: ")
    assert "config.yaml" not in info.value.message
    assert "variable" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("sessions: {default_ttl: soon}\n", "sessions.default_ttl", "not a duration"),
        ("approvals: {max_failures: -1}\n", "approvals.max_failures", "greater than"),
        ("totp: {colour: blue}\n", "totp.colour", "not permitted"),
        ("services: {Bad Name: {connector: imap}}\n", "services", "lowercase"),
        ("services: {work: {host: x}}\n", "services.work.connector", "required"),
        (MAIL + "permissions: {mail: {write: dny}}\n", "permissions.mail.write", "'ask' or 'deny'"),
        (MAIL + "permissions: {mail: {wrte: deny}}\n", "permissions.mail.wrte", "not permitted"),
        (MAIL + "permissions: {mail: deny}\n", "permissions.mail", "valid dictionary"),
        (MAIL + "permissions: {gmial: {write: deny}}\n", "permissions.gmial", "no service"),
        # Odd numbers are refused at load like any wrong key, never a traceback then or
        # a failure later (an infinite cap failed each spend request; an endless TTL,
        # each approval).
        ("sessions: {max_ttl: .inf}\n", "sessions.max_ttl", "not a duration"),
        ("approvals: {timeout: -.inf}\n", "approvals.timeout", "not a duration"),
        ("sessions: {default_ttl: .nan}\n", "sessions.default_ttl", "not a duration"),
        (f"sessions: {{max_ttl: {10**400}}}\n", "sessions.max_ttl", "at most 9999999d"),
        ("sessions: {max_ttl: '99999999999999999999'}\n", "sessions.max_ttl", "at most"),
        (MAIL + "permissions: {mail: {max_usd: .inf}}\n", "permissions.mail.max_usd", "finite"),
    ],
)
def test_an_invalid_file_is_refused_with_file_key_and_reason(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message
    assert str(path) in message
    assert f"key {key}" in message
    assert words in message
    assert "Value error" not in message  # pydantic's prefix to a validator's own words


def test_a_services_permissions_are_typed_and_its_own(tmp_path: Path) -> None:
    """Each service gets its own block, defaults (writes ask) when it has none."""
    text = "services: {mail: {connector: maildir}, notes: {connector: maildir}}\n"
    config = load_config(
        write(tmp_path, text + "permissions: {rate_limit: 5, mail: {write: deny}}\n")
    )
    assert config.permissions.rate_limit == 5
    assert config.permissions.for_service("mail").write == "deny"
    assert config.permissions.for_service("notes").write == "ask"


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "services: {unclosed\n"))


def test_an_unknown_connector_names_the_package_to_install(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "services: {mail: {connector: gmail}}\n"))
    with pytest.raises(ConfigError) as info:
        resolve_service("mail", config, {})
    assert info.value.hint == "pip install airlock-gmail"


def test_service_settings_are_checked_by_their_connector(tmp_path: Path) -> None:
    from pydantic import BaseModel

    class PortSettings(BaseModel):
        port: int

    class Fake(Connector):
        name = "fake"
        Settings = PortSettings

    config = load_config(write(tmp_path, "services: {f: {connector: fake, port: many}}\n"))
    with pytest.raises(ConfigError, match=r"services\.f\.port: Input should be a valid integer"):
        resolve_service("f", config, {"fake": Fake})
    config = load_config(write(tmp_path, "services: {f: {connector: fake, port: 993}}\n"))
    assert resolve_service("f", config, {"fake": Fake}).settings == PortSettings(port=993)


def test_airlock_home_puts_everything_under_one_directory(tmp_path: Path) -> None:
    paths = resolve_paths({"AIRLOCK_HOME": str(tmp_path)})
    assert paths.mode is Mode.PERSONAL
    assert paths.config_file == tmp_path / "config.yaml"
    assert paths.data_dir == tmp_path / "data"
    assert paths.socket == tmp_path / "run" / "airlock.sock"


def test_personal_mode_follows_xdg(tmp_path: Path) -> None:
    env = {
        # Explicit: an isolated install on this machine (/etc/airlock) must not change it.
        "AIRLOCK_MODE": "personal",
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path / "rt"),
        "AIRLOCK_SOCKET": str(tmp_path / "other.sock"),
    }
    paths = resolve_paths(env)
    assert paths.config_file == tmp_path / ".config/airlock/config.yaml"
    assert paths.data_dir == tmp_path / ".local/share/airlock"
    assert paths.run_dir == tmp_path / "rt/airlock"
    assert paths.socket == tmp_path / "other.sock"


def test_isolated_mode_uses_system_paths() -> None:
    paths = resolve_paths({"AIRLOCK_MODE": "isolated", "HOME": "/nonexistent"})
    assert paths.config_file == Path("/etc/airlock/config.yaml")
    assert paths.data_dir == Path("/var/lib/airlock")
    assert paths.socket == Path("/run/airlock/airlock.sock")
    with pytest.raises(ConfigError, match="not a mode"):
        resolve_paths({"AIRLOCK_MODE": "sideways"})


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("60m", 3600), ("8h", 28800), ("7d", 604800), ("45", 45)]
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0m", "-5m", "5 minutes", "1e9s", "m"])
def test_bad_durations_are_refused_clearly(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text, field="ttl")


def test_isolated_mode_lets_the_socket_group_reach_the_run_directory(tmp_path: Path) -> None:
    from dataclasses import replace

    paths = resolve_paths({"AIRLOCK_MODE": "isolated", "HOME": str(tmp_path)})
    local = replace(
        paths, data_dir=tmp_path / "lib", run_dir=tmp_path / "run", config_file=tmp_path / "c.yaml"
    )
    local.ensure_data_dirs()
    assert (local.data_dir.stat().st_mode & 0o777) == 0o700
    assert (local.run_dir.stat().st_mode & 0o777) == 0o750


@pytest.mark.parametrize(
    ("approvals", "key"),
    [
        ({"max_failures": 100}, "max_failures"),
        ({"failure_window": "1s"}, "failure_window"),
        ({"failure_window": 299}, "failure_window"),
        ({"lockout": "1s"}, "lockout"),
        ({"lockout": "4m"}, "lockout"),
    ],
)
def test_no_config_makes_guessing_codes_fast(
    tmp_path: Path, approvals: dict[str, object], key: str
) -> None:
    """An agent running as you can edit your config and reload it: the lockout's bounds
    keep guessing at 10 wrong codes per 5 minutes at best (the person told at each lock),
    whatever the config says, in the models and in the plain check alike."""
    with pytest.raises(ConfigError) as refused:
        validated_config(tmp_path / "config.yaml", {"approvals": approvals}, {})
    assert f"approvals.{key}" in refused.value.message
    assert plain_services({"approvals": approvals}, {}) is None
    allowed = {"max_failures": 10, "failure_window": "5m", "lockout": 300}
    config = validated_config(tmp_path / "config.yaml", {"approvals": allowed}, {})
    assert (config.approvals.max_failures, config.approvals.lockout) == (10, 300)
    assert plain_services({"approvals": allowed}, {}) == {}
