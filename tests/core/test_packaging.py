"""What a person sees on PyPI and in site-packages: a licence, Linux stated plainly,
project URLs, READMEs that stand alone, dependency floors that can be installed."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import requires
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent for p in ROOT.glob("airlock-*/pyproject.toml"))


def project(package: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((package / "pyproject.toml").read_text("utf-8"))
    return data["project"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
def test_every_package_ships_the_mit_licence(package: Path) -> None:
    meta = project(package)
    assert meta["license"] == "MIT"
    assert meta["license-files"] == ["LICENSE"], "the wheel carries LICENSE (nox -s discovery)"
    assert (package / "LICENSE").read_text("utf-8") == (ROOT / "LICENSE").read_text("utf-8")
    assert "MIT License" in (ROOT / "LICENSE").read_text("utf-8")


@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
def test_every_package_says_linux_and_links_home(package: Path) -> None:
    meta = project(package)
    assert "Operating System :: POSIX :: Linux" in meta["classifiers"]
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(meta["urls"])


@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
def test_every_readme_stands_alone(package: Path) -> None:
    text = (package / "README.md").read_text("utf-8")
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert not [link for link in links if not link.startswith(("http://", "https://"))], (
        "a README on PyPI cannot follow relative links"
    )


def test_the_pydantic_floor_is_one_mcp_can_be_installed_with() -> None:
    core = project(ROOT / "airlock-core")
    ours = next(Requirement(r) for r in core["dependencies"] if r.startswith("pydantic>"))
    mcp = next(Requirement(r) for r in requires("mcp") or [] if Requirement(r).name == "pydantic")
    floor = min(Version(s.version) for s in ours.specifier if s.operator == ">=")
    needed = min(Version(s.version) for s in mcp.specifier if s.operator == ">=")
    assert floor >= needed, f"pydantic>={floor} admits versions mcp cannot run with"


def test_uvloop_is_an_optional_speedup() -> None:
    core = project(ROOT / "airlock-core")
    assert not [r for r in core["dependencies"] if r.startswith("uvloop")]
    assert any(r.startswith("uvloop") for r in core["optional-dependencies"]["speedups"])


def test_the_readme_says_to_install_airlock_core() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    assert "pip install airlock-core" in text
    assert "Linux" in text
