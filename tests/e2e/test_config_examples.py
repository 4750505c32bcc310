"""Every configuration example a person may copy loads: the `airlock init` template (as
written and with its commented examples switched on) and each YAML block of the docs and
the package READMEs, validated down to each service's and notifier's own settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from airlock.errors import ConfigError
from airlock.framework.plugins import get_connectors, get_notifiers, get_plugin_manager
from airlock.gateway.services import resolve_services
from airlock.settings.config import AirlockConfig, load_config
from airlock.settings.config_template import CONFIG_TEMPLATE

ROOT = Path(__file__).resolve().parents[2]
MARKDOWN = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md", *ROOT.glob("airlock-*/README.md")])
YAML_BLOCK = re.compile(r"```ya?ml\n(.*?)```", re.S)
# `  # key: value` -> `  key: value`, as an editor's "uncomment" does.
COMMENTED_KEY = re.compile(r"^(\s*)# ([a-z_]+:\s*\S.*)$", re.M)


def examples() -> list[tuple[str, str]]:
    found = [("airlock init template", CONFIG_TEMPLATE)]
    found.append(("airlock init template, examples uncommented", uncomment(CONFIG_TEMPLATE)))
    for path in MARKDOWN:
        for number, block in enumerate(YAML_BLOCK.findall(path.read_text(encoding="utf-8")), 1):
            found.append((f"{path.relative_to(ROOT)} block {number}", block))
    return found


def uncomment(text: str) -> str:
    return COMMENTED_KEY.sub(r"\1\2", text)


def validate_fully(path: Path, home: Path) -> AirlockConfig:
    """What the daemon checks at start: the file, then each service's and notifier's settings."""
    config = load_config(path)
    for entry in config.services.values():
        maildir = entry.settings.get("path")
        if entry.connector == "maildir" and isinstance(maildir, str):
            for sub in ("cur", "new", "tmp"):
                (Path(maildir).expanduser() / sub).mkdir(parents=True, exist_ok=True)
    pm = get_plugin_manager()
    resolve_services(config, get_connectors(pm))
    notifiers = get_notifiers(pm)
    for name, settings in config.notifiers.items():
        notifiers[name].Settings.model_validate(settings)
    for name in config.approvals.notifiers:
        assert name in notifiers, f"approvals.notifiers names {name!r}, not installed"
    return config


@pytest.mark.parametrize(("where", "text"), examples(), ids=[w for w, _ in examples()])
def test_every_config_example_loads(
    where: str, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    validate_fully(path, tmp_path)


def test_the_templates_examples_are_all_switched_on_by_uncommenting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "config.yaml"
    path.write_text(uncomment(CONFIG_TEMPLATE), encoding="utf-8")
    config = validate_fully(path, tmp_path)
    assert sorted(config.services) == ["archive", "gmail", "work"]
    assert config.permissions.for_service("gmail").write == "deny"
    assert config.totp.digits == 6


def test_one_example_uncommented_by_deleting_only_the_hash_loads(tmp_path: Path) -> None:
    text = CONFIG_TEMPLATE.replace(
        "  # gmail:   {connector: gmail}", "   gmail:   {connector: gmail}"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert list(load_config(path).services) == ["gmail"]


def test_the_template_as_written_has_no_services(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_TEMPLATE, encoding="utf-8")
    assert yaml.safe_load(CONFIG_TEMPLATE)["services"] is None
    assert load_config(path).services == {}


def test_a_yaml_error_names_the_line_shows_it_and_hints(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("sessions:\n  max_ttl: 8h\nservices: {}\n  archive: {connector: maildir}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "line 4" in caught.value.message
    assert "archive: {connector: maildir}" in caught.value.message
    assert caught.value.hint is not None
    assert "remove the {}" in caught.value.hint


def test_a_tab_in_the_indentation_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("services:\n\tarchive: {connector: maildir}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "line 2" in caught.value.message
    assert caught.value.hint == "indent with spaces: YAML does not allow tabs"
