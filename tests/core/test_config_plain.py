"""The plain check of a config (airlock.settings.config_plain) never accepts what the
config's models refuse, and the services it reads are the ones the models read:
``airlock status`` and ``services`` skip the models only for a config it accepts, so an
invalid config is refused as before. And it accepts the configs people have (none, the
template, plain values, a service or two), or the skipping would never happen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.errors import ConfigError
from airlock.settings.config import AirlockConfig, validated_config
from airlock.settings.config_file import read_config_file
from airlock.settings.config_plain import OTHER_KEYS, SECTIONS, plain_services
from airlock.settings.config_template import CONFIG_TEMPLATE

PATH = Path("/nowhere/config.yaml")


Services = dict[str, tuple[str, dict[str, Any]]]


def loads(data: dict[str, Any], env: dict[str, str] | None = None) -> Services | None:
    """The services the models read (connector, settings), or None if they refuse."""
    try:
        config = validated_config(PATH, data, env or {})
    except ConfigError:
        return None
    return {name: (s.connector, s.settings) for name, s in config.services.items()}


def plain(data: dict[str, Any], env: dict[str, str] | None = None) -> Services | None:
    """The services the plain check reads, or None if it leaves the config to the models."""
    found = plain_services(data, env or {})
    if found is None:
        return None
    return {name: (s.connector, s.settings) for name, s in found.items()}


def test_the_rules_name_every_key_of_the_config() -> None:
    assert set(SECTIONS) | set(OTHER_KEYS) == set(AirlockConfig.model_fields)
    for name, checks in SECTIONS.items():
        model = AirlockConfig.model_fields[name].annotation
        assert isinstance(model, type)
        assert set(checks) == set(model.model_fields), name  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text",
    [
        "",
        CONFIG_TEMPLATE,
        "sessions: {default_ttl: 90s, max_ttl: 8h}\napprovals: {timeout: 300, lockout: 1d}\n",
        "totp: {digits: 8, period: 60, issuer: Me}\npermissions: {rate_limit: 10}\n",
        "daemon: {allowed_uids: [1000, 1001]}\nconnector_host: {socket: /run/h.sock}\n",
        "audit: {rotate_bytes: 4096, max_bytes: 16384}\nmcp: {approval_wait: 30s}\n",
        "dashboard: {listen: 'off'}\nnotifiers: {telegram: {chat_id: 5}}\nservices: {}\n",
        "dashboard: {listen: '0.0.0.0:9000', allow_remote: true}\n",
        "services: {mail: {connector: maildir, path: ~/Mail}}\n",
        "services:\n  work: {connector: imap, host: imap.example.org, port: 993}\n"
        "  mcp-files: {connector: mcp, command: [npx, files], env: {TOKEN: x}}\n"
        "permissions: {rate_limit: 10, work: {write: deny}, mcp-files: {max_usd: 2.5}}\n",
        CONFIG_TEMPLATE.replace("  # archive:", "  archive:"),
    ],
)
def test_configs_people_write_are_plainly_valid(text: str) -> None:
    data = {k: v for k, v in (yaml.safe_load(text) or {}).items() if v is not None}
    found = plain(data, {"AIRLOCK_HOME": "/x", "PATH": "/bin"})
    assert found is not None
    assert found == loads(data)


@pytest.mark.parametrize("edit", ["", "\n", "# mine\n"])
def test_the_template_is_read_as_yaml_reads_it(tmp_path: Path, edit: str) -> None:
    """Unchanged, the template is known without parsing; edited, it is parsed: the same."""
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_TEMPLATE + edit, encoding="utf-8")
    parsed = {k: v for k, v in yaml.safe_load(CONFIG_TEMPLATE).items() if v is not None}
    assert read_config_file(path) == parsed
    assert read_config_file(path) is not read_config_file(path)


def test_the_template_with_its_example_service_is_read_with_it(tmp_path: Path) -> None:
    """As a person sets it up: the example's # removed."""
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_TEMPLATE.replace("  # archive:", "  archive:"), encoding="utf-8")
    assert plain(read_config_file(path)) == {"archive": ("maildir", {"path": "~/Mail/archive"})}


@pytest.mark.parametrize(
    ("data", "env"),
    [
        ({"approvals": {"timeout": "later"}}, {}),
        ({"services": {"Mail": {"connector": "maildir"}}}, {}),
        ({"services": {"mail\n": {"connector": "maildir"}}}, {}),
        ({"services": {"mail": {"path": "/srv/Maildir"}}}, {}),
        ({"services": {"mail": {"connector": 5}}}, {}),
        ({"services": {"mail": {"connector": "maildir", 1: "x"}}}, {}),
        ({"services": {"mail": "maildir"}}, {}),
        ({"services": {"mail": {"connector": "m"}}, "permissions": {"work": {}}}, {}),
        ({"services": {"mail": {"connector": "m"}}, "permissions": {"mail": {"write": 1}}}, {}),
        ({"services": {"m": {"connector": "m"}}, "permissions": {"m": {"max_usd": -1}}}, {}),
        ({"services": {"mail": {"connector": "maildir"}}}, {"AIRLOCK_SERVICES__MAIL__PATH": "/"}),
        ({"totp": {"digits": 9}}, {}),
        ({"totp": {"digits": True}}, {}),
        ({"permissions": {"gmail": {"write": "deny"}}}, {}),
        ({"audit": {"rotate_bytes": 8192, "max_bytes": 16384}}, {}),
        ({"dashboard": {"listen": "0.0.0.0:9000"}}, {}),
        ({"dashboard": {"listen": "127.0.0.1:²"}}, {}),
        ({"sessions": {"default_ttl": "0s"}}, {}),
        ({"sessions": {"default_ttl": 2**70}}, {}),  # past the longest duration
        ({"typo": {}}, {}),
        ({}, {"AIRLOCK_SESSIONS__DEFAULT_TTL": "later"}),
        ({}, {"airlock_services": '{"m": {"connector": "maildir"}}'}),
    ],
)
def test_anything_else_is_left_to_the_models(data: dict[str, Any], env: dict[str, str]) -> None:
    assert plain(data, env) is None


DURATIONS = ["90s", "60m", " 8 h ", "7d", "0s", "00000001s", "12345678s", "1.5h", "later", ""]
NUMBERS = [0, 1, 5, 6, 8, 9, 15, 100, 120, 4096, 16384, 10**6, 2 * 1024**3, -1, 2**70]
VALUES = st.one_of(
    st.sampled_from(DURATIONS),
    st.sampled_from(NUMBERS),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["127.0.0.1:8410", "off", "[::1]:1", "0.0.0.0:80", "localhost:x"]),
    st.lists(st.sampled_from([*NUMBERS, "console", True]), max_size=3),
    st.dictionaries(st.sampled_from(["telegram", "chat_id", 1]), st.integers(), max_size=2),
)
BLOCKS = {
    name: st.dictionaries(st.sampled_from([*checks, "typo", "gmail"]), VALUES, max_size=3)
    for name, checks in SECTIONS.items()
}
NAMES = st.sampled_from(["mail", "work-2", "mail", "work-2", "Mail", "m" * 33, "mail\n", 1])
SETTING = st.sampled_from(["connector", "path", "port", "Port", "_x", "a b", 1, "model_config"])
SERVICES = st.dictionaries(
    NAMES,
    st.one_of(
        st.fixed_dictionaries(
            {"connector": st.sampled_from(["maildir", "", "x"])},
            optional={"path": VALUES, "Port": VALUES, "model_config": VALUES},
        ),
        st.dictionaries(SETTING, st.one_of(VALUES, st.sampled_from(["maildir", "imap"]))),
        VALUES,
    ),
    max_size=3,
)
USD = [0, 1, -1, 2.5, 2**60, None, True, float("inf"), float("nan"), "3"]
BLOCKS["services"] = SERVICES
CONFIG = st.lists(
    st.sampled_from([*SECTIONS, *OTHER_KEYS, "typo"]), unique=True, max_size=4
).flatmap(
    lambda names: st.fixed_dictionaries(
        {name: st.one_of(BLOCKS.get(name, VALUES), st.just({}), VALUES) for name in names}
    )
)
ENV = st.dictionaries(
    st.sampled_from(
        ["AIRLOCK_HOME", "AIRLOCK_TOTP__DIGITS", "Airlock_Mcp", "HOME", "AIRLOCK_SERVICES__MAIL"]
    ),
    st.sampled_from(["7", "x", '{"approval_wait": "5s"}']),
    max_size=2,
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIG, ENV)
def test_what_the_check_accepts_the_models_accept(
    data: dict[str, Any], env: dict[str, str]
) -> None:
    found = plain(data, env)
    if found is not None:
        assert found == loads(data, env), data


BLOCK = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "write": st.sampled_from(["ask", "deny", "allow", 1]),
            "max_usd": st.sampled_from(USD),
        },
    ),
    st.dictionaries(st.sampled_from(["write", "typo"]), st.sampled_from(["ask", 7])),
    VALUES,
)


@st.composite
def with_services(draw: st.DrawFn) -> dict[str, Any]:
    """A config naming services (mostly as people write them), with blocks of
    permissions for some of them (or for others)."""
    entry = st.fixed_dictionaries(
        {"connector": st.sampled_from(["maildir", "imap", ""])},
        optional={"path": VALUES, "Port": VALUES},
    )
    name = st.sampled_from(["mail", "work-2", "x" * 32])
    services = draw(st.dictionaries(st.one_of(name, NAMES), st.one_of(entry, SERVICES), max_size=3))
    data: dict[str, Any] = {"services": services}
    if draw(st.booleans()):
        names = st.sampled_from([*[str(n) for n in services], "rate_limit", "other"])
        blocks = st.dictionaries(names, st.one_of(BLOCK, st.sampled_from([1, 60, 0])))
        data["permissions"] = draw(blocks)
    return data


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_services(), st.one_of(st.just({}), ENV))
def test_the_services_it_reads_are_the_models(data: dict[str, Any], env: dict[str, str]) -> None:
    found = plain(data, env)
    if found is not None:
        assert found == loads(data, env), data
