"""An unknown connector or notifier is never answered with a made-up package name (which
whoever registers it on PyPI would then get installed): only the project's own packages
are suggested, or a near-miss among installed components."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.errors import ConfigError
from airlock.framework.connectors import Connector
from airlock.gateway.services import PUBLISHED_PACKAGES, resolve_service
from airlock.settings.config import AirlockConfig

ROOT = Path(__file__).resolve().parents[2]


class Gmail(Connector):
    name = "gmail"


def hint_for(connector: str, installed: dict[str, type[Connector]]) -> str:
    config = AirlockConfig(services={"x": {"connector": connector}})
    with pytest.raises(ConfigError) as caught:
        resolve_service("x", config, installed)
    assert caught.value.hint is not None
    return caught.value.hint


def test_a_typo_of_an_installed_connector_asks_did_you_mean() -> None:
    hint = hint_for("gmial", {"gmail": Gmail})
    assert hint.startswith("did you mean 'gmail'?")
    assert "pip install" not in hint


def test_an_unknown_connector_suggests_no_package() -> None:
    hint = hint_for("slack", {"gmail": Gmail})
    assert hint.startswith("no installed plugin provides the connector 'slack'")
    assert "pip install" not in hint
    assert "airlock-slack" not in hint


def test_a_connector_of_one_of_our_packages_names_it() -> None:
    assert hint_for("gmail", {}) == "pip install airlock-gmail"


def test_every_suggested_package_is_one_this_repository_builds() -> None:
    for package in set(PUBLISHED_PACKAGES.values()):
        assert (ROOT / package / "pyproject.toml").is_file(), package
