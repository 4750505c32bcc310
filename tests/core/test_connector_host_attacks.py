"""The connector host attacked from outside the protocol: by another local user who can
write the directory the daemon was started in, and by a host (or a connector in it) that
answers with numbers the core cannot turn into an HTTP answer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from airlock.connector_host.link import ChildHost, HostLink


def test_a_child_host_does_not_import_code_from_the_daemons_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airlock serve`` run in a shared directory (``/tmp``, a group's project): another
    user who can write there plants a package named ``airlock``. ``python -m`` puts the
    working directory first on the import path, so a host started that way would run the
    planted code as the person, next to every service credential."""
    shared = tmp_path / "shared"
    planted = shared / "airlock"
    planted.mkdir(parents=True)
    ran = tmp_path / "planted-code-ran"
    (planted / "__init__.py").write_text(
        f"open({str(ran)!r}, 'w').write('as the person')\nraise SystemExit(99)\n"
    )
    monkeypatch.chdir(shared)

    async def ping() -> dict[str, object]:
        link = HostLink(ChildHost(tmp_path / "data"), timeout=60)
        try:
            return await link.request("ping")
        finally:
            await link.close()

    answer = asyncio.run(ping())
    assert not ran.exists(), "the connector host ran code planted in the working directory"
    assert isinstance(answer["pid"], int)
