"""Reading ``config.yaml``: the file's sections as data, before any model checks them.

Kept apart from :mod:`airlock.settings.config` (the models, built with pydantic) so a
command that only needs to know the file is valid and names no service can ask
:mod:`airlock.settings.config_plain` without building them. A file that cannot be read,
is not YAML or is not a mapping is refused here, with the file and the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airlock.errors import ConfigError

if TYPE_CHECKING:
    import yaml

CONFIG_CHANGED = "config changed since start: run airlock reload"


def config_digest(path: Path) -> str | None:
    """SHA-256 of the file's bytes, so a daemon can tell its config was edited; None if
    there is no file."""
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _yaml_error(path: Path, text: str, exc: yaml.YAMLError) -> ConfigError:
    """The line YAML stumbled on, shown with what usually causes it."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return ConfigError(f"{path}: not valid YAML: {problem}")
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    if "\t" in line[: len(line) - len(line.lstrip())] or "'\\t'" in problem:
        hint = "indent with spaces: YAML does not allow tabs"
    elif mark.line > 0 and re.match(r"^\S[^#]*:\s*[{\[]", lines[mark.line - 1]):
        hint = (
            f"line {mark.line} already gives its value inline ({lines[mark.line - 1].strip()}); "
            "remove the {} or [] to put entries on the lines below it"
        )
    else:
        hint = (
            "check the indentation (spaces, the same for every entry of a section) and "
            "that each key is followed by a colon and a space; docs/configuration.md has examples"
        )
    return ConfigError(
        f"{path}, line {mark.line + 1}: not valid YAML: {problem}\n    {line.rstrip()}",
        hint=hint,
        field=f"line {mark.line + 1}",
    )


def read_config_file(path: Path) -> dict[str, Any]:
    """The sections of *path* (a missing file has none), old keys read as today's."""
    text = read_config_text(path)
    if text is None:
        return {}
    data, notices = config_sections(path, text)
    log_notices(notices)
    return data


def log_notices(notices: list[str]) -> None:
    """Say what to write instead of each old key: on stderr in the CLI (logging's last
    resort), in the daemon's log."""
    if notices:
        import logging

        for notice in notices:
            logging.getLogger("airlock.config").warning(notice)


def read_config_text(path: Path) -> str | None:
    """The text of *path*; None if there is no file."""
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. an agent's user and the isolated-mode /etc/airlock
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    if not exists:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None


def config_sections(path: Path, text: str) -> tuple[dict[str, Any], list[str]]:
    """The sections of the config *text* (read from *path*), old keys read as today's,
    and the notices saying what to write instead of an old key."""
    from airlock.settings.config_template import CONFIG_TEMPLATE, template_sections

    if text == CONFIG_TEMPLATE:  # as `airlock init` wrote it: known without parsing
        return template_sections(), []
    import yaml  # only for a file to parse: ~10 ms of start-up

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise _yaml_error(path, text, exc) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    # A section whose entries are all commented out (`services:` over examples) is
    # empty, not an error: the template relies on it.
    data = {key: value for key, value in data.items() if value is not None}
    from airlock.settings.config_legacy import upgrade

    return upgrade(path, data)
