"""``airlock serve`` on a clock the test moves: run as a script with AIRLOCK_HOME set.

The daemon's time is real time plus the seconds in ``$AIRLOCK_HOME/clock-offset`` (0 when
the file is missing), so a test jumps the daemon past a deadline without sleeping and
without waiting for the periodic sweep.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from airlock.common.logs import configure_logging
from airlock.daemon.server import serve
from airlock.framework.plugins import get_plugin_manager
from airlock.settings.paths import resolve_paths

OFFSET_FILE = "clock-offset"


class OffsetClock:
    def __init__(self, offset_file: Path) -> None:
        self._file = offset_file

    def now(self) -> float:
        try:
            offset = float(self._file.read_text(encoding="ascii") or 0)
        except FileNotFoundError:
            offset = 0.0
        return time.time() + offset


def main() -> None:
    configure_logging(json=True)
    clock = OffsetClock(Path(os.environ["AIRLOCK_HOME"]) / OFFSET_FILE)
    asyncio.run(serve(resolve_paths(), get_plugin_manager(), clock=clock))


if __name__ == "__main__":
    main()
