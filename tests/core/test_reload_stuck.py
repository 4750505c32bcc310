"""A reload puts the new config in force at once, all of it: an old notifier stuck in its
client library while it closes must not hold back the rest (``daemon.allowed_uids`` that
no longer lets a uid in) nor keep the next reload or ``airlock unlock`` waiting.
An in-process runtime with a fake clock, a real state store and a real audit log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from gateway_fixtures import Phone, make_runtime
from test_approvals import AuditOutage

from airlock.common.clock import FakeClock
from airlock.errors import AuditError
from airlock.settings.config import AirlockConfig


def test_a_notifier_stuck_closing_holds_back_no_part_of_a_reload(tmp_path: Path) -> None:
    runtime, _ = make_runtime(tmp_path, FakeClock(start=1_800_000_000.0))
    in_force: list[AirlockConfig] = []
    runtime.on_reload.append(in_force.append)  # the daemon sets its uid gate here
    closing = asyncio.Event()
    released = asyncio.Event()

    async def stuck() -> None:
        closing.set()
        await released.wait()  # a client library that does not return

    old_phone = runtime.notifiers["phone"]
    assert isinstance(old_phone, Phone)
    old_phone.close = stuck  # type: ignore[method-assign]
    services = {"notes": {"connector": "notebook"}}
    settings = {
        "services": services,
        "approvals": {"notifiers": ["console", "phone"]},
        "daemon": {"allowed_uids": [4242]},  # the person's own uid, no longer an agent's
    }
    runtime.paths.config_file.write_text(yaml.safe_dump(settings))

    async def main() -> None:
        await runtime.start()
        try:
            first = asyncio.create_task(runtime.reload())
            await closing.wait()
            for _ in range(10):
                await asyncio.sleep(0)
            assert [c.daemon.allowed_uids for c in in_force] == [[4242]]
            await first  # the reload is done; the old notifier closes on its own time
            await runtime.reload()  # and the next one is not kept waiting either
            assert len(in_force) == 2
        finally:
            released.set()
            await runtime.stop()

    asyncio.run(main())


def test_a_reload_the_audit_log_cannot_record_does_not_happen(tmp_path: Path) -> None:
    """Every change of what agents may do is on the record before it is in force: with
    the audit log unwritable (a full disk), a reload is refused and the running config,
    the core's and the connector host's, stays."""
    runtime, _ = make_runtime(tmp_path, FakeClock(start=1_800_000_000.0))
    services = {"notes": {"connector": "notebook"}, "more": {"connector": "notebook"}}
    runtime.paths.config_file.write_text(yaml.safe_dump({"services": services}))

    async def main() -> None:
        await runtime.start()
        try:
            with AuditOutage(runtime), pytest.raises(AuditError):
                await runtime.reload()
            assert sorted(runtime.services) == ["notes"]
            assert runtime.host.config.services.keys() == {"notes"}
            await runtime.reload()  # the log takes records again
            assert sorted(runtime.services) == ["more", "notes"]
        finally:
            await runtime.stop()

    asyncio.run(main())
    records = (runtime.paths.audit_dir / "audit.jsonl").read_text()
    assert records.count('"config_reloaded"') == 1
