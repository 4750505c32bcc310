"""A real daemon process on a real socket, with a notifier configured against a local
stand-in of its messenger: for tests driven end to end, and the approval benchmark.

Time is real here, so the "phone" is the end-to-end tests' TotpPhone: each code it hands
out is for a newer time step (a code is accepted once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pyotp
import yaml

from airlock.clients.local_daemon import LocalDaemon
from airlock.security.totp import save_secret
from airlock.security.vault import TotpKey, Vault
from tests.e2e.daemon_harness import TotpPhone, run_airlock
from tests.notifier_harness.runtime import distinct_ttl

ROOT = Path(__file__).resolve().parents[2]


class NotifierDaemon(LocalDaemon):
    """`airlock serve` (plus the echo connector) for one home, the notifier configured."""

    def __init__(
        self,
        home: Path,
        notifier: str,
        settings: dict[str, Any] | None,
        credentials: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        home.mkdir(parents=True, exist_ok=True)
        super().__init__(home, command=[sys.executable, "-m", "tests.notifier_harness.serve"])
        extra = dict(extra or {})
        # Without settings the notifier is installed but not configured (before setup).
        active = ["console", notifier] if settings is not None else ["console"]
        config = {
            "services": {"echo": {"connector": "echo"}},
            "approvals": {"notifiers": active, **extra.pop("approvals", {})},
            "notifiers": {notifier: settings} if settings is not None else {},
            **extra,
        }
        (home / "config.yaml").write_text(yaml.safe_dump(config))
        self.paths.ensure_data_dirs()
        secret = pyotp.random_base32()
        save_secret(self.paths.totp_file, secret)
        self.phone = TotpPhone(secret)
        self.vault = Vault(self.paths.vault_file, TotpKey(secret))
        if credentials:
            self.vault.set(notifier, credentials)
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.env["PYTHONPATH"] = pythonpath  # the launcher lives in this repository

    def client(self) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(uds=str(self.paths.socket))
        return httpx.AsyncClient(transport=transport, base_url="http://airlock", timeout=70)

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run ``airlock ARGS`` against this home, as the person would."""
        return run_airlock(self.env, *args, stdin=stdin, cwd=ROOT)

    def audit_text(self) -> str:
        return (self.paths.audit_dir / "audit.jsonl").read_text()

    def audit(self, event: str | None = None) -> list[dict[str, Any]]:
        lines = self.audit_text().splitlines()
        events = [json.loads(line) for line in lines]
        return [e for e in events if event is None or e["event"] == event]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def request(client: httpx.AsyncClient, reason: str = "read my echo") -> dict[str, Any]:
    body = {"services": ["echo"], "reason": reason, "ttl": distinct_ttl()}
    response = await client.post("/v1/requests", json=body)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    return created


async def collect(client: httpx.AsyncClient, created: dict[str, Any], wait: int = 20) -> Any:
    """The agent's long-poll for its request: the status (and the session, once)."""
    response = await client.get(
        f"/v1/requests/{created['id']}?wait={wait}",
        headers={"X-Airlock-Claim": created["claim"]},
    )
    assert response.status_code == 200, response.text
    return response.json()
