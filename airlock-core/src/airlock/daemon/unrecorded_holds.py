"""Money a call may have spent whose reservation never reached the state database.

A spend call's hold is written as its request goes out; should that write fail (another
process holding the database's lock past the wait, a full disk), the call is stopped and
the hold stays taken in the daemon (:class:`~airlock.gateway.budgets.Budgets`). The
daemon counts it as spent at its worst case at its next try: every housekeeping round,
and at its stop. Each is audited before the database changes, once; one still refused at
the stop is audited as not counted, so the person can tell what a restart forgot. Calls
a stop cut off (reservations left open in the database) are counted at the next start,
each audited first too.
"""

from __future__ import annotations

from collections.abc import Iterable

from airlock.common.logs import get_logger
from airlock.framework.spending import usd
from airlock.gateway.budgets import Budgets, Reservation
from airlock.security.audit import Auditor

__all__ = ["UnrecordedHolds"]

log = get_logger("airlock.daemon")

NOT_WRITTEN = "its reservation could not be written"


class UnrecordedHolds:
    def __init__(self, budgets: Budgets, audit: Auditor) -> None:
        self.budgets = budgets
        self.audit = audit
        self._announced: set[str] = set()
        """Holds already audited as settled, waiting for the database to take the write."""

    async def count(self) -> None:
        """Count every hold the database takes now; the rest wait for the next try."""
        for held in self.budgets.unrecorded():
            if held.id not in self._announced:
                await self.settled([held], NOT_WRITTEN)
                self._announced.add(held.id)
            try:
                self.budgets.count_unrecorded(held)
            except Exception as exc:
                log.warning("budget_hold_not_counted_yet", error=type(exc).__name__)
                return
            self._announced.discard(held.id)

    async def count_before_stop(self) -> None:
        """The last try; what the database still refuses is audited as lost."""
        await self.count()
        for held in self.budgets.unrecorded():
            log.error("budget_hold_not_counted", session=held.session_id)
            await self.audit.append(
                "budget_hold_not_counted",
                session=held.session_id,
                reservation=held.id,
                cost_usd=usd(held.amount_nano),
                reason="the state database refused writes until the daemon stopped",
            )

    async def settle_cut_off(self) -> None:
        """Count the calls a stop cut off (their reservations still open) as spent at
        their worst case, each audited before the database changes: should its record
        fail (a full disk), the next start counts it."""
        for held in self.budgets.cut_off():
            await self.settled([held], "the call was cut off by a daemon stop")
            if self.budgets.count_cut_off(held):
                log.warning(
                    "call_cut_off_counted", session=held.session_id, cost_usd=usd(held.amount_nano)
                )

    async def settled(self, held: Iterable[Reservation], reason: str) -> None:
        """Audit holds counted as spent at their worst case."""
        for reservation in held:
            await self.audit.append(
                "budget_settled_at_reservation",
                session=reservation.session_id,
                reservation=reservation.id,
                cost_usd=usd(reservation.amount_nano),
                reason=reason,
            )
