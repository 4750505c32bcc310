"""What every notifier's ``setup`` command shares (``airlock telegram setup``, ``airlock
signal setup``): showing the settings it found as YAML to paste, writing them into
config.yaml when asked, and storing a secret in the daemon's vault.

Writing config.yaml is opt-in (``--write-config``): a YAML round trip drops the comments
``airlock init`` wrote, so the previous file is kept next to it as ``config.yaml.bak``, and
the new file must load before it replaces the old one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from airlock.errors import ConfigError

if TYPE_CHECKING:
    from airlock.cli.context import CliState

__all__ = [
    "api_base_setting",
    "config_snippet",
    "configured_api_base",
    "report_settings",
    "store_secret",
    "write_notifier_config",
]


def config_snippet(name: str, settings: Mapping[str, Any]) -> str:
    """The YAML that turns the notifier on, to paste into config.yaml."""
    import yaml

    block = yaml.safe_dump({"notifiers": {name: dict(settings)}}, sort_keys=False)
    return f"{block}# and add {name} to approvals.notifiers, e.g. [console, {name}]\n"


def write_notifier_config(path: Path, name: str, settings: Mapping[str, Any]) -> Path | None:
    """Merge ``notifiers.<name>`` into *path* and add *name* to ``approvals.notifiers``.

    Returns the backup of the previous file (None when there was none).
    """
    import yaml

    from airlock.common.files import atomic_write_private
    from airlock.settings.config import load_config

    data: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
        data = loaded
    notifiers = data.setdefault("notifiers", {}) or {}
    data["notifiers"] = notifiers
    notifiers[name] = {**(notifiers.get(name) or {}), **settings}
    approvals = data.setdefault("approvals", {}) or {}
    data["approvals"] = approvals
    active = list(approvals.get("notifiers") or ["console"])
    if name not in active:
        active.append(name)
    approvals["notifiers"] = active
    backup = None
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_private(path, yaml.safe_dump(data, sort_keys=False).encode("utf-8"))
    if mode is not None:
        os.chmod(path, mode)
    try:
        load_config(path)
    except ConfigError:
        if backup is not None:
            shutil.copy2(backup, path)
        raise
    return backup


def report_settings(
    state: CliState, name: str, settings: Mapping[str, Any], *, write: bool
) -> None:
    """Write the settings (``--write-config``) or print them to paste."""
    path = state.paths.config_file
    if write:
        backup = write_notifier_config(path, name, settings)
        saved = f" (the previous file is {backup})" if backup else ""
        typer.echo(f"wrote notifiers.{name} to {path} and enabled it{saved}")
        typer.echo("run `airlock reload` (or start the daemon) to start using it")
        return
    typer.echo(f"add this to {path} (or run again with --write-config):\n")
    typer.echo(config_snippet(name, settings))
    typer.echo("then run `airlock reload` (or start the daemon)")


def configured_api_base(state: CliState, name: str, given: str | None, default: str) -> str:
    """``--api-base``, else ``notifiers.<name>.api_base`` from config.yaml, else *default*."""
    configured = state.config.notifiers.get(name, {})
    return str(given or configured.get("api_base") or default).rstrip("/")


def api_base_setting(base: str, default: str) -> dict[str, str]:
    """``{"api_base": base}`` to save, or nothing when *base* is the default."""
    return {} if base == default else {"api_base": base}


def store_secret(state: CliState, name: str, fields: Mapping[str, str], totp: str) -> None:
    """Store *fields* in the daemon's vault under *name* (the daemon checks the TOTP)."""
    from airlock.cli.client_support import with_client

    with_client(state, lambda client: client.add_credentials(name, dict(fields), totp=totp))
