"""A simulated authenticator app, for the demo and the end-to-end tests.

Real time runs here (the daemon is another process), and each code is accepted once, for
a time step newer than the last one accepted, within ±1 step of the daemon's clock. So
each code this phone hands out is for a newer step than the one before, and never for a
step that could slip out of the daemon's window before it is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyotp

PERIOD = 30
# A code for the previous step is still good until the current step ends; closer to that
# edge than this, the phone uses the current step instead. Ten seconds: a command that
# reads the code and then takes a while to send it (a loaded CI machine: over 5 s seen)
# still reaches the daemon inside the window.
SAFETY_MARGIN = 10.0


@dataclass
class SimulatedPhone:
    secret: str
    last_step: int = -(10**9)
    now: Callable[[], float] = time.time
    """The daemon's time (a test may run the daemon on a shifted clock)."""
    _totp: pyotp.TOTP = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._totp = pyotp.TOTP(self.secret)

    def __repr__(self) -> str:
        return f"SimulatedPhone(last_step={self.last_step})"

    def code(self) -> str:
        """The next code to send; waits (< 30 s) only when the window's steps are used up."""
        now = self.now()
        now_step = int(now // PERIOD)
        earliest = now_step - 1 if PERIOD - (now % PERIOD) > SAFETY_MARGIN else now_step
        step = max(self.last_step + 1, earliest)
        if step > now_step + 1:
            time.sleep((step - 1) * PERIOD - now + 0.1)
        self.last_step = step
        return str(self._totp.at(step * PERIOD))

    def totp_at(self, step: int) -> str:
        """The code the app shows during *step* (what a person would read off it)."""
        return str(self._totp.at(step * PERIOD))

    def used_code(self) -> str:
        """The code sent last (to show that a replay is refused)."""
        return str(self._totp.at(self.last_step * PERIOD))
