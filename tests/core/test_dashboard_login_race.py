"""A dashboard login whose code was checked against the old TOTP secret while the secret
was being replaced: the replacement ends every login, this one included, however the two
interleave. Run on the real runtime; only the login's own ``session_issued`` record is
held back (its audit log is the runtime's, wrapped), to open the window between its code
check and its saved session that a busy disk opens."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pyotp
from gateway_fixtures import Phone
from test_approvals import ME, audit_events, code_at, run, settle

from airlock.common.clock import FakeClock
from airlock.daemon.runtime import Runtime
from airlock.dashboard.auth import DashboardAuth


class _HeldIssue:
    """The runtime's audit log, holding back the ``session_issued`` record until told."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def append(self, event: str, **fields: Any) -> Any:
        if event == "session_issued":
            self.reached.set()
            await self.go.wait()
        return await self.real.append(event, **fields)


def test_a_login_checked_with_the_old_secret_does_not_survive_its_replacement(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        auth = DashboardAuth(runtime, 3600)
        held = _HeldIssue(runtime.audit)
        runtime.audit = held  # type: ignore[assignment]
        login = asyncio.ensure_future(auth.login(code_at(totp, clock), "127.0.0.1", ME.uid))
        await asyncio.wait_for(held.reached.wait(), 10)  # its code passed: old secret
        runtime.audit = held.real

        clock.advance(30)
        started = await runtime.totp_reset(code_at(totp, clock), ME)
        new = pyotp.parse_uri(started.uri)
        clock.advance(30)
        confirm = asyncio.ensure_future(
            runtime.totp_confirm(started.id, str(new.at(clock.now())), ME)
        )
        await settle()  # the replacement goes as far as it can
        held.go.set()
        made = await asyncio.wait_for(login, 10)
        await asyncio.wait_for(confirm, 10)
        await settle()

        assert auth.session_of(made.token, ME.uid) is None
        session = runtime.store.get_session(made.session.id)
        assert session is not None
        assert not session.is_active(clock.now())
        ended = [
            r
            for r in audit_events(runtime)
            if r["event"] == "session_revoked" and r["session"] == made.session.id
        ]
        assert [r.get("reason") for r in ended] == ["totp_replaced"]

    run(tmp_path, scenario)
