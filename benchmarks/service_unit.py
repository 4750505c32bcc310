"""Quality of the isolated-mode systemd units, as systemd itself rates them: the
connector host's (``airlock-connectors.service``) and the core's (``airlock.service``).
For each, the messages of ``systemd-analyze verify`` (target: none) and the exposure
level of ``systemd-analyze security --offline=true`` (0 best … 10 worst; target: ≤ 2.0,
a bare unit rates 9.6). Prints JSON. Needs only the unit files, not a running systemd.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from airlock.service.layout import DAEMONS
from airlock.service.units import analyze, system_unit

TARGET_EXPOSURE = 2.0
SAMPLE_CORE_UID = 999
"""The core's uid in the host's ``--allow-uid`` (the user need not exist to rate it)."""


def main() -> None:
    figures: dict[str, object] = {"target_exposure": TARGET_EXPOSURE}
    # The core's Requires= names the host's unit: verify needs both side by side.
    with tempfile.TemporaryDirectory(prefix="airlock-unit-") as tmp:
        for daemon in DAEMONS:
            # The interpreter must exist for verify; which one does not change the rating.
            text = system_unit(daemon, Path(sys.executable), peer_uid=SAMPLE_CORE_UID)
            (Path(tmp) / daemon.unit_name).write_text(text)
        for daemon in DAEMONS:
            check = analyze(Path(tmp) / daemon.unit_name)
            figures[daemon.unit_name] = {
                "verify_messages": check.verify_messages,
                "exposure": check.exposure,
                "ok": not check.verify_messages and check.exposure <= TARGET_EXPOSURE,
            }
    print(json.dumps({"service_unit": figures}, indent=2))


if __name__ == "__main__":
    main()
