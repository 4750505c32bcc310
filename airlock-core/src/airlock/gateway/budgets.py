"""Budgets of spend sessions: reserve a call's worst case, settle its actual cost.

The state lives in the state database (see :class:`~airlock.state.store.StateStore`), so money
spent stays spent across a daemon restart, and a reservation is taken by one statement
that checks the budget left, so concurrent calls cannot overspend. A call whose actual
cost exceeds its reservation is still counted in full (the money is gone); the budget
left then shows zero and the next call is refused.

A reservation still open when the daemon starts belongs to a call that was cut off by a
crash or a restart: its request may have reached the service, so it is counted as spent
at its worst case (fail closed).

**Deciding without waiting for the disk.** A streamed call's time to its first token
pays for whatever runs before its request goes out. The budget decides on the caller's
thread, from what this process knows of it (read once from the database, then kept up to
date by its own holds and settlements): no thread hop, no disk write. The daemon is the
only process that spends (it holds the data directory's lock), so what it holds is the
budget. A spend call holds all that is left while it is priced (:meth:`Budgets.hold_rest`),
then keeps only its quote (:meth:`Budgets.shrink`, which refuses a quote over what is held).
:meth:`Budgets.record` then writes the hold with the same checked statement, while the
service prepares its answer and before anything of it is read. The call is already on its
way then: should the database refuse the hold (changed behind the daemon's back), the
call is stopped with :class:`BudgetExhausted`, its worst case is counted as spent (its
request may have reached the service) and what the database says is left is believed
from then on. Should the write fail, the call is stopped too and its hold stays taken in
this process (re-read from the database or not), to be counted as spent by the daemon
(:mod:`airlock.daemon.unrecorded_holds`): until then it is the one sum a crash could lose.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from airlock.api import AccessRequestIn
from airlock.common.clock import Clock
from airlock.errors import BudgetExhausted, InvalidInput
from airlock.framework.spending import BudgetState, format_usd, nano_usd, spend_settings
from airlock.gateway.services import Service
from airlock.models import Access
from airlock.settings.config import PermissionsConfig
from airlock.state.store import StateStore

__all__ = ["MOST_COUNTED_NANO", "Budgets", "Reservation", "budget_cap", "requested_budget"]

MOST_COUNTED_NANO = 10**18
"""The most one call is counted as spent ($1,000,000,000): a cost reported above it (a
broken service) still spends any budget, and the sum stays within the state database's
integers (a larger one could not be stored, and the call would stay unsettled)."""


@dataclass(frozen=True)
class Reservation:
    id: str
    session_id: str
    amount_nano: int


@dataclass
class _Known:
    """A session's budget as this process knows it (nano-dollars)."""

    limit_nano: int
    spent_nano: int
    reserved_nano: int


class Budgets:
    def __init__(self, store: StateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._unrecorded: list[Reservation] = []
        """Holds of calls stopped because their write failed (or the write counting a
        refused one did): to be counted as spent at their worst case by the daemon."""
        self._lock = threading.Lock()  # holds on the event loop, settlements in threads

    def open(self, session_id: str, limit_nano: int) -> BudgetState:
        self._store.open_budget(session_id, limit_nano)
        with self._lock:
            self._known[session_id] = _Known(limit_nano, 0, 0)
        return BudgetState(limit_nano)

    def hold_rest(self, session_id: str) -> Reservation:
        """Hold all the session's budget that is left (maybe nothing) while its next call
        is priced; :meth:`shrink` it to the call's worst case, or :meth:`release` it."""
        with self._lock:
            known = self._budget_of(session_id)
            left = 0
            if known is not None:
                left = max(known.limit_nano - known.spent_nano - known.reserved_nano, 0)
                known.reserved_nano += left
        return Reservation("rsv_" + secrets.token_urlsafe(9), session_id, left)

    def shrink(self, reservation: Reservation, amount_nano: int, *, service: str) -> Reservation:
        """Keep only *amount_nano* of a hold not yet recorded, or raise
        :class:`BudgetExhausted` when that is more than is held (the hold is unchanged:
        :meth:`release` it)."""
        if amount_nano < 0:
            raise ValueError("a hold is never negative")
        if amount_nano > reservation.amount_nano:
            raise budget_exhausted(amount_nano, reservation.amount_nano, service)
        self._release(
            Reservation(
                reservation.id, reservation.session_id, reservation.amount_nano - amount_nano
            ),
            spent_nano=0,
        )
        return Reservation(reservation.id, reservation.session_id, amount_nano)

    def release(self, reservation: Reservation) -> None:
        """Give back a hold not yet recorded (its call was not sent)."""
        self._release(reservation, spent_nano=0)

    def record(self, reservation: Reservation, *, service: str) -> Reservation:
        """Make a hold (:meth:`shrink`'s) durable (blocking: a transaction and its fsync)."""
        try:
            won = self._store.reserve_budget(
                reservation.session_id,
                reservation.id,
                reservation.amount_nano,
                at=self._clock.now(),
            )
        except BaseException:
            # The call is on its way to the service and may cost: its hold stays taken,
            # never given back, and is counted as spent once the database takes a write.
            self._keep_unrecorded(reservation)
            raise
        if not won:
            # The call may have reached the service already: what it may cost is spent.
            try:
                self._store.count_spent(reservation.session_id, reservation.amount_nano)
            except Exception:
                self._keep_unrecorded(reservation)
            self._forget(reservation.session_id)  # the database knows better: ask it again
            state = self.state(reservation.session_id)
            left = format_usd(state.left_nano if state else 0)
            raise BudgetExhausted(
                f"the budget left on {service} is {left} by its record, less than this call "
                f"may cost ({format_usd(reservation.amount_nano)}): the call was stopped "
                "before any of its answer was read, and counted at that cost",
                hint="ask for a new spend approval, or lower max_tokens",
            )
        return reservation

    def unrecorded(self) -> list[Reservation]:
        """Holds of calls stopped because their write failed, not counted as spent yet."""
        with self._lock:
            return list(self._unrecorded)

    def count_unrecorded(self, reservation: Reservation) -> None:
        """Count one of :meth:`unrecorded` as spent at its worst case (a transaction and
        its fsync; raises while the database refuses writes, and it stays waiting)."""
        self._store.count_spent(reservation.session_id, reservation.amount_nano)
        with self._lock:
            self._unrecorded.remove(reservation)
        self._release(reservation, spent_nano=reservation.amount_nano)

    def _keep_unrecorded(self, reservation: Reservation) -> None:
        with self._lock:
            self._unrecorded.append(reservation)

    def lower(self, session_id: str, limit_nano: int) -> bool:
        """Lower a budget's limit (a reload with a lower cap); what was spent or is held
        stays counted. False if it was not higher. This process holds to it even while
        the database refuses the write."""
        with self._lock:
            known = self._known.get(session_id)
            if known is not None:
                known.limit_nano = min(known.limit_nano, limit_nano)
        return self._store.lower_budget(session_id, limit_nano)

    def state(self, session_id: str) -> BudgetState | None:
        found = self._store.get_budget(session_id)
        return BudgetState(*found) if found is not None else None

    def settle(self, reservation: Reservation, spent_nano: int) -> BudgetState:
        """Count *spent_nano* (at most :data:`MOST_COUNTED_NANO`) and release the
        reservation; the budget after it."""
        spent_nano = min(spent_nano, MOST_COUNTED_NANO)
        if self._store.settle_budget(reservation.id, spent_nano):
            self._release(reservation, spent_nano=spent_nano)
        state = self.state(reservation.session_id)
        assert state is not None  # a reservation exists only for a budget
        return state

    def settle_cut_off(self) -> list[Reservation]:
        """Count every reservation left open by a previous run as spent at its worst case."""
        return [held for held in self.cut_off() if self.count_cut_off(held)]

    def cut_off(self) -> list[Reservation]:
        """The reservations a previous run left open: calls a stop cut off."""
        return [Reservation(*row) for row in self._store.open_reservations()]

    def count_cut_off(self, reservation: Reservation) -> bool:
        """Count one of :meth:`cut_off` as spent at its worst case (False: it was already)."""
        if not self._store.settle_budget(reservation.id, reservation.amount_nano):
            return False
        self._forget(reservation.session_id)
        return True

    def _budget_of(self, session_id: str) -> _Known | None:
        """What this process knows of the session's budget (call with the lock held)."""
        known = self._known.get(session_id)
        if known is None:
            found = self._store.get_budget(session_id)  # once per session and run
            if found is not None:
                known = self._known[session_id] = _Known(*found)
                # Held here, unknown to the database: its write failed.
                known.reserved_nano += sum(
                    r.amount_nano for r in self._unrecorded if r.session_id == session_id
                )
        return known

    def _release(self, reservation: Reservation, *, spent_nano: int) -> None:
        """What the database did to a settled (or refused) reservation, done to what this
        process knows."""
        with self._lock:
            known = self._known.get(reservation.session_id)
            if known is not None:
                known.reserved_nano -= reservation.amount_nano
                known.spent_nano += spent_nano

    def _forget(self, session_id: str) -> None:
        with self._lock:
            self._known.pop(session_id, None)


def budget_exhausted(amount_nano: int, left_nano: int, service: str) -> BudgetExhausted:
    return BudgetExhausted(
        f"this call may cost up to {format_usd(amount_nano)} and the budget left on "
        f"{service} is {format_usd(left_nano)}: nothing was sent",
        hint="ask for a new spend approval, or lower max_tokens",
    )


def requested_budget(
    body: AccessRequestIn, known: Mapping[str, Service], permissions: PermissionsConfig
) -> int | None:
    """The budget an access request asks the person for (nano-dollars), or None.

    Only access ``spend`` carries one, on exactly one service whose connector spends money.
    It defaults to the service's ``max_usd`` and is capped by it (and by
    ``permissions.<service>.max_usd`` when set): like a TTL, a larger amount is lowered,
    and the prompt shows the amount actually asked.
    """
    if body.access is not Access.SPEND:
        if body.budget_usd is not None:
            raise InvalidInput('budget_usd goes with access "spend"', field="budget_usd")
        return None
    if body.operation is not None:
        raise InvalidInput(
            'access "spend" approves an amount, not one operation', field="operation"
        )
    services = list(dict.fromkeys(body.services))
    if len(services) != 1:
        raise InvalidInput("a spend request names exactly one service", field="services")
    name = services[0]
    cap = budget_cap(name, known, permissions)
    if cap is None:
        raise InvalidInput(f"service {name!r} does not spend money", field="access")
    asked = nano_usd(body.budget_usd) if body.budget_usd is not None else cap
    return min(asked, cap)


def budget_cap(
    name: str, known: Mapping[str, Service], permissions: PermissionsConfig
) -> int | None:
    """The most one approval may spend on service *name* (nano-dollars): its ``max_usd``,
    and ``permissions.<name>.max_usd`` when lower; None for a service that spends nothing
    (or is not configured)."""
    service = known.get(name)
    settings = spend_settings(service.settings) if service is not None else None
    if settings is None:
        return None
    cap = nano_usd(settings.max_usd)
    extra = permissions.for_service(name).max_usd
    return cap if extra is None else min(cap, nano_usd(extra))
