"""One spend operation: quote → reserve → call → charge → settle (see docs/plugins.md).

The gateway has already authenticated the session and run the policies. Here the
connector prices the call's worst case, the session's budget reserves it (or the call is
refused with 402 ``budget_exhausted`` and nothing is sent), the call runs, and its actual
cost settles the reservation. Pricing and calling are one request to the connector host
(no round trip between them): the core holds what is left of the budget while the host
quotes, and the host sends the call only if its quote fits in that. What the audit
records about the call is collected in ``facts`` as it becomes known, so a failed call's
record says as much as a good one's.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from airlock.connector_host.client import PricedAnswer
from airlock.errors import AirlockError, BudgetExhausted, ConnectorError, ServiceRefused
from airlock.framework.connectors import OperationSpec
from airlock.framework.policies import canonical_params
from airlock.framework.spending import (
    BudgetState,
    Charge,
    Meter,
    PricedConnector,
    Quote,
    format_usd,
    nano_usd,
    spend_settings,
    usd,
)
from airlock.gateway.budgets import Budgets, Reservation
from airlock.gateway.services import Service

if TYPE_CHECKING:
    from airlock.connector_host.client import ConnectorHost, PricedItem


__all__ = ["BudgetCut", "PricedCalls", "audited_params"]


class BudgetCut(Exception):
    """A stream passed its reservation and was ended (the client gets an error event)."""


def audited_params(settings: BaseModel, params: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit keeps of a spend call's parameters: by default not the prompt, only
    its length and SHA-256 (``audit_prompts: true`` keeps everything)."""
    spend = spend_settings(settings)
    if spend is not None and spend.audit_prompts:
        return dict(params)
    text = canonical_params(params)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return {"chars": len(text), "sha256": digest}


def _budget_facts(state: BudgetState) -> dict[str, Any]:
    return {"budget_left_usd": usd(state.left_nano), "budget_spent_usd": usd(state.spent_nano)}


class PricedCalls:
    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self._pricing: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        """Per session: the call being priced holds all the budget left until its quote
        is in; the session's next call waits for that (a moment), instead of being
        refused for money the first call is about to give back."""

    async def run(
        self,
        host: ConnectorHost,
        service: Service,
        spec: OperationSpec,
        params: Mapping[str, Any],
        session_id: str,
        facts: dict[str, Any],
    ) -> BaseModel:
        _check_priced(service, spec)
        budget = self.budgets.state(session_id)
        _, reservation, frames = await self._open(
            host, service, spec, params, session_id, facts, streamed=False, budget=budget
        )
        answer: PricedAnswer | None = None
        try:
            async for item in frames:
                if isinstance(item, PricedAnswer):
                    answer = item
        except AirlockError as exc:
            # Refused by the service, or before it went out, the call cost nothing; any
            # other failure (an answer lost on the way back, a timeout) may have cost.
            self._settle(reservation, None, facts, spent_nano=_spent_by_refusal(exc))
            raise
        except BaseException:
            # Cut off (a crash in the connector, the client gone): it may have cost.
            self._settle(reservation, None, facts)
            raise
        finally:
            await _close(frames)
        if answer is None:  # the host ended without a result: it may have cost
            self._settle(reservation, None, facts)
            raise ConnectorError(f"{service.name}.{spec.name} gave no result")
        if answer.charge_error is not None:
            facts["charge_error"] = answer.charge_error
        found = answer.charge
        self._settle(reservation, (lambda: found) if found else None, facts)
        return answer.result

    async def stream(
        self,
        host: ConnectorHost,
        service: Service,
        spec: OperationSpec,
        params: Mapping[str, Any],
        session_id: str,
        facts: dict[str, Any],
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The chunks of a streamed call, as they arrive; raises :class:`BudgetCut` when the
        service's answer runs past what was reserved. Closing it ends the call and settles
        it."""
        _check_priced(service, spec)
        worst, reservation, items = await self._open(
            host, service, spec, params, session_id, facts, streamed=True
        )
        charge: Charge | None = None
        chunks = 0
        refused: int | None = None
        whole = False
        try:
            async for item in items:
                if isinstance(item, Charge):
                    charge = item
                elif isinstance(item, Meter):
                    if nano_usd(item.usd) > worst:
                        facts["cut"] = "answer ran past its reservation"
                        raise BudgetCut(
                            f"the answer passed its reserved {format_usd(worst)} and was cut off"
                        )
                elif isinstance(item, dict):
                    chunks += 1
                    yield item
            whole = True
        except AirlockError as exc:
            if not chunks and charge is None:  # nothing of an answer came: refused?
                refused = _spent_by_refusal(exc)
            raise
        finally:
            facts["chunks"] = chunks
            # Cut short, the service may go on answering (and billing) to its worst case:
            # a cost reported on the way is only a count so far.
            found = charge if whole or charge is None or nano_usd(charge.usd) > worst else None
            try:
                await _close(items)
            finally:  # settled even when ending the call fails
                self._settle(
                    reservation, (lambda: found) if found else None, facts, spent_nano=refused
                )

    async def _open(
        self,
        host: ConnectorHost,
        service: Service,
        spec: OperationSpec,
        params: Mapping[str, Any],
        session_id: str,
        facts: dict[str, Any],
        *,
        streamed: bool,
        budget: BudgetState | None = None,
    ) -> tuple[int, Reservation, AsyncIterator[PricedItem]]:
        """Price the call and reserve its worst case, in one request to the connector host.

        All the budget left is held while the host quotes; the host sends the call only
        if its quote is within that, and the hold shrinks to the quote. Returns the worst
        case, the reservation (on disk: nothing of the answer has been read yet) and the
        call's frames after the quote. Over the budget: :class:`BudgetExhausted`, nothing
        sent.
        """
        lock = self._pricing.setdefault(session_id, asyncio.Lock())
        async with lock:
            ceiling = self.budgets.hold_rest(session_id)
            frames = host.priced(
                service.name,
                spec,
                params,
                ceiling_nano=ceiling.amount_nano,
                streamed=streamed,
                budget=budget,
            )
            try:
                quote = await anext(frames, None)
                if not isinstance(quote, Quote):
                    raise ConnectorError(f"{service.name}.{spec.name} was not priced")
                worst = nano_usd(quote.usd)
                facts.update(quote.facts)
                facts["reserved_usd"] = usd(worst)
                held = self.budgets.shrink(ceiling, worst, service=service.name)
            except BaseException as exc:
                self.budgets.release(ceiling)
                await _close(frames)
                if isinstance(exc, BudgetExhausted):
                    state = self.budgets.state(session_id)
                    if state is not None:
                        facts.update(_budget_facts(state))
                raise
        # The host sends the call as it quotes: the reservation is written while the
        # service prepares its answer. On the event loop, not in a worker thread: this
        # thread holds a core already, a worker waits for one (both are busy with the
        # host and the service now), and the first chunk would wait with it (0.3 ms at
        # p50 here, and the daemon's other state writes are inline too).
        try:
            self.budgets.record(held, service=service.name)
        except BaseException:
            await _close(frames)
            raise
        return worst, held, frames

    def _settle(
        self,
        reservation: Reservation,
        charge_of: Any,
        facts: dict[str, Any],
        *,
        spent_nano: int | None = None,
    ) -> None:
        """Settle with the connector's charge; without one, at the reservation (fail closed)."""
        if spent_nano is None:
            spent_nano = reservation.amount_nano
            try:
                charge = charge_of() if charge_of is not None else None
            except Exception as exc:  # a broken report must not leave money unaccounted
                facts["charge_error"] = type(exc).__name__
                charge = None
            if charge is not None:
                spent_nano = nano_usd(charge.usd)
                facts.update(charge.facts)
            else:
                facts["cost_from"] = "reservation (no final usage reported)"
        if spent_nano > reservation.amount_nano:
            facts["over_reservation"] = True
        facts["cost_usd"] = usd(spent_nano)
        state = self.budgets.settle(reservation, spent_nano)
        facts.update(_budget_facts(state))


def _check_priced(service: Service, spec: OperationSpec) -> None:
    """A spend call of a connector that prices its calls (its params were validated when
    the gateway admitted the call, and the host validates them again)."""
    if not issubclass(service.connector, PricedConnector):
        raise ConnectorError(f"{service.name}.{spec.name} spends money but has no prices")


def _spent_by_refusal(exc: AirlockError) -> int | None:
    """0 when *exc* says the call cost nothing: the service refused it or was never
    reached (:class:`ServiceRefused`), or it was refused before it went out (an error
    that is not the service's: bad input, a policy). None for any other failure of the
    service, a lost answer among them: the call may have cost its reservation, and a
    connector that does not say otherwise is taken at its worst (fail closed)."""
    if isinstance(exc, ServiceRefused) or not isinstance(exc, ConnectorError):
        return 0
    return None


async def _close(items: AsyncIterator[Any]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()
