"""Budgets of spend sessions: reserve a call's worst case, settle its actual cost.

The state lives in the state database (see :class:`~airlock.state.store.StateStore`), so money
spent stays spent across a daemon restart, and a reservation is taken by one statement
that checks the budget left, so concurrent calls cannot overspend. A call whose actual
cost exceeds its reservation is still counted in full (the money is gone); the budget
left then shows zero and the next call is refused.

A reservation still open when the daemon starts belongs to a call that was cut off by a
crash or a restart: its request may have reached the service, so it is counted as spent
at its worst case (fail closed).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from airlock.api import AccessRequestIn
from airlock.common.clock import Clock
from airlock.errors import BudgetExhausted, InvalidInput
from airlock.framework.spending import BudgetState, format_usd, nano_usd, spend_settings
from airlock.gateway.services import Service
from airlock.models import Access
from airlock.settings.config import PermissionsConfig
from airlock.state.store import StateStore

__all__ = ["Budgets", "Reservation", "requested_budget"]


@dataclass(frozen=True)
class Reservation:
    id: str
    session_id: str
    amount_nano: int


class Budgets:
    def __init__(self, store: StateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def open(self, session_id: str, limit_nano: int) -> BudgetState:
        self._store.open_budget(session_id, limit_nano)
        return BudgetState(limit_nano)

    def state(self, session_id: str) -> BudgetState | None:
        found = self._store.get_budget(session_id)
        return BudgetState(*found) if found is not None else None

    def reserve(
        self,
        session_id: str,
        amount_nano: int,
        *,
        service: str,
        decided: Callable[[bool], None] | None = None,
    ) -> Reservation:
        """Hold *amount_nano* of the session's budget, or raise :class:`BudgetExhausted`.

        Returns once the reservation is durable; *decided* hears whether it was taken as
        soon as that is known (see :meth:`StateStore.reserve_budget`)."""
        reservation = Reservation("rsv_" + secrets.token_urlsafe(9), session_id, amount_nano)
        if self._store.reserve_budget(
            session_id, reservation.id, amount_nano, at=self._clock.now(), decided=decided
        ):
            return reservation
        state = self.state(session_id)
        left = format_usd(state.left_nano) if state is not None else "$0.00"
        raise BudgetExhausted(
            f"this call may cost up to {format_usd(amount_nano)} and the budget left on "
            f"{service} is {left}: nothing was sent",
            hint="ask for a new spend approval, or lower max_tokens",
        )

    def settle(self, reservation: Reservation, spent_nano: int) -> BudgetState:
        """Count *spent_nano* and release the reservation; the budget after it."""
        self._store.settle_budget(reservation.id, spent_nano)
        state = self.state(reservation.session_id)
        assert state is not None  # a reservation exists only for a budget
        return state

    def settle_cut_off(self) -> list[Reservation]:
        """Count every reservation left open by a previous run as spent at its worst case."""
        settled = []
        for reservation_id, session_id, amount in self._store.open_reservations():
            if self._store.settle_budget(reservation_id, amount):
                settled.append(Reservation(reservation_id, session_id, amount))
        return settled


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
    service = known.get(name)
    settings = spend_settings(service.settings) if service is not None else None
    if settings is None:
        raise InvalidInput(f"service {name!r} does not spend money", field="access")
    cap = nano_usd(settings.max_usd)
    extra = permissions.for_service(name).max_usd
    if extra is not None:
        cap = min(cap, nano_usd(extra))
    asked = nano_usd(body.budget_usd) if body.budget_usd is not None else cap
    return min(asked, cap)
