"""Quality of the isolated-mode systemd unit, as systemd itself rates it: the messages of
``systemd-analyze verify`` (target: none) and the exposure level of
``systemd-analyze security --offline=true`` (0 best … 10 worst; target: ≤ 2.0, a bare
unit rates 9.6). Prints JSON. Needs only the unit file, not a running systemd.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from airlock.service.layout import DAEMONS
from airlock.service.units import analyze, system_unit

TARGET_EXPOSURE = 2.0


def main() -> None:
    figures: dict[str, object] = {"target_exposure": TARGET_EXPOSURE}
    with tempfile.TemporaryDirectory(prefix="airlock-unit-") as tmp:
        for daemon in DAEMONS:
            unit = Path(tmp) / daemon.unit_name
            # The interpreter must exist for verify; which one does not change the rating.
            unit.write_text(system_unit(daemon, Path(sys.executable)))
            check = analyze(unit)
            figures[daemon.unit_name] = {
                "verify_messages": check.verify_messages,
                "exposure": check.exposure,
                "ok": not check.verify_messages and check.exposure <= TARGET_EXPOSURE,
            }
    print(json.dumps({"service_unit": figures}, indent=2))


if __name__ == "__main__":
    main()
