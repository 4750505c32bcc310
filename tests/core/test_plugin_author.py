"""What a third-party plugin author meets: settings typos refused by name, the shipped
example plugin and its contract test, the testing extra, the packaging example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from airlock.errors import ConfigError, InvalidInput
from airlock.framework.connectors import Connector
from airlock.gateway.services import resolve_service
from airlock.settings.config import AirlockConfig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "airlock-weather"


class CarelessSettings(BaseModel):
    """A plugin's settings model that forgot extra="forbid"."""

    city: str
    units: str = "metric"


class FreeForm(BaseModel):
    model_config = ConfigDict(extra="allow")


class Careless(Connector[CarelessSettings]):
    name = "careless"
    Settings = CarelessSettings


class Free(Connector[FreeForm]):
    name = "free"
    Settings = FreeForm


def test_a_misspelled_setting_is_refused_by_name_even_without_forbid() -> None:
    config = AirlockConfig(services={"w": {"connector": "careless", "city": "Oslo", "unit": "x"}})
    with pytest.raises(ConfigError) as caught:
        resolve_service("w", config, {"careless": Careless})
    assert caught.value.message == "services.w: unknown setting 'unit'"
    assert caught.value.field == "services.w.unit"
    assert caught.value.hint == "its settings are: city, units"


def test_a_model_that_asks_for_free_form_settings_gets_them() -> None:
    settings = Free.parse_settings({"anything": 1}, service="f")
    assert settings.model_extra == {"anything": 1}


def test_a_wrong_value_still_names_its_key() -> None:
    with pytest.raises(InvalidInput) as caught:
        Careless.parse_settings({"city": ["not", "a", "string"]}, service="w")
    assert caught.value.field == "services.w.city"  # the key to fix in config.yaml
    assert "city" in caught.value.message


def test_settings_are_typed_by_the_connector_type_argument() -> None:
    connector = Careless(
        Careless.parse_settings({"city": "Oslo"}, service="w"), Careless.Credentials(), service="w"
    )
    assert connector.settings.city == "Oslo"  # mypy --strict checks this line too


def test_the_shipped_example_plugin_passes_its_own_contract_test(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(EXAMPLE / "src"), *sys.path]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\d+ passed", result.stdout)


def test_the_docs_packaging_example_is_the_example_plugins_and_is_complete() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", docs, re.S)
    assert block is not None
    shown = tomllib.loads(block.group(1))
    real = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))
    assert shown["build-system"] == real["build-system"]
    assert shown["project"]["entry-points"] == real["project"]["entry-points"]
    assert shown["project"]["dependencies"] == real["project"]["dependencies"]
    assert "examples/airlock-weather/tests/test_weather.py" in docs
    assert (EXAMPLE / "tests" / "test_weather.py").is_file()


def test_airlock_core_testing_extra_brings_pytest() -> None:
    core = tomllib.loads((ROOT / "airlock-core" / "pyproject.toml").read_text(encoding="utf-8"))
    testing = core["project"]["optional-dependencies"]["testing"]
    assert any(re.match(r"pytest\b", requirement) for requirement in testing)
