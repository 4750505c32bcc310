"""Session tokens that ``airlock run`` keeps between invocations: 0600, until they expire."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airlock.common.files import atomic_write_private, ensure_private_dir


class TokenCache:
    def __init__(self, directory: Path) -> None:
        self.path = directory / f"sessions-{os.getuid()}.json"

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, OSError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, service: str) -> str | None:
        entry = self._load().get(service)
        if not isinstance(entry, dict):
            return None
        try:
            expires = datetime.fromisoformat(str(entry["expires_at"]))
        except (KeyError, ValueError):
            return None
        token = entry.get("token")
        if not isinstance(token, str) or expires <= datetime.now(UTC):
            return None
        return token

    def put(self, services: list[str], token: str, expires_at: datetime) -> None:
        data = {k: v for k, v in self._load().items() if k not in services}
        for service in services:
            data[service] = {"token": token, "expires_at": expires_at.isoformat()}
        ensure_private_dir(self.path.parent)
        atomic_write_private(self.path, json.dumps(data).encode())

    def drop(self, service: str) -> None:
        data = self._load()
        if data.pop(service, None) is not None:
            atomic_write_private(self.path, json.dumps(data).encode())
