"""Operations that spend money: the connector-facing contract (see docs/plugins.md).

A connector whose operations cost money (an LLM API) subclasses :class:`PricedConnector`
and declares those operations with ``access=Access.SPEND``. Core never knows the service's
prices; it asks the connector two questions around every call:

1. before the call is sent, :meth:`PricedConnector.quote`: the *worst case* this call can
   cost (e.g. the prompt's estimate plus ``max_tokens`` at the model's price). Core reserves
   that much against the session's budget, atomically and durably, and refuses the call
   (402 ``budget_exhausted``) when the budget left cannot cover it: nothing is sent;
2. after the answer, :meth:`PricedConnector.charge`: what the call actually cost (the
   service's own figure when it reports one). Core settles the reservation with it.

A streamed call (:meth:`PricedConnector.stream`) yields the service's chunks as they come,
optionally :class:`Meter` readings of the cost so far (core cuts the stream when they pass
the reservation), and finally one :class:`Charge`.

The facts in a :class:`Quote` or :class:`Charge` go into the audit record of the call
(model, tokens): they must never carry the prompt itself or a secret.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from airlock.errors import ConnectorError
from airlock.framework.connectors import Connector

__all__ = [
    "NANO_PER_USD",
    "BudgetState",
    "Charge",
    "Meter",
    "PricedConnector",
    "Quote",
    "SpendSettings",
    "StreamItem",
    "current_budget",
    "format_usd",
    "nano_usd",
    "usd",
]

NANO_PER_USD = 10**9
"""Budgets are counted in whole nano-dollars: exact sums, no float drift."""


def nano_usd(amount: float | Decimal | str) -> int:
    """*amount* dollars as whole nano-dollars, rounded up (a cost is never undercounted)."""
    value = Decimal(str(amount))
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a cost in dollars: {amount!r}")
    return int((value * NANO_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def usd(nano: int) -> float:
    """Nano-dollars as dollars, for JSON answers and audit lines."""
    return nano / NANO_PER_USD


def format_usd(nano: int) -> str:
    """``$0.05``; amounts under a cent keep their digits (``$0.000123``)."""
    dollars = Decimal(nano) / NANO_PER_USD
    if nano and dollars < Decimal("0.01"):
        return f"${dollars.normalize():f}"
    return f"${dollars.quantize(Decimal('0.01'), rounding=ROUND_CEILING):f}"


@dataclass(frozen=True)
class BudgetState:
    """A spend session's budget: approved, spent (settled calls), reserved (calls running)."""

    limit_nano: int
    spent_nano: int = 0
    reserved_nano: int = 0

    @property
    def left_nano(self) -> int:
        return max(0, self.limit_nano - self.spent_nano - self.reserved_nano)

    def as_usd(self) -> dict[str, float]:
        return {
            "limit_usd": usd(self.limit_nano),
            "spent_usd": usd(self.spent_nano),
            "reserved_usd": usd(self.reserved_nano),
            "left_usd": usd(self.left_nano),
        }


_CURRENT_BUDGET: ContextVar[BudgetState | None] = ContextVar("airlock_budget", default=None)


def current_budget() -> BudgetState | None:
    """The budget of the session whose operation is running (None outside a spend session).

    A connector's ``usage``-like operation reports it; core sets it around every call.
    """
    return _CURRENT_BUDGET.get()


@contextlib.contextmanager
def budget_in_force(state: BudgetState | None) -> Iterator[None]:
    """What :func:`current_budget` returns while the enclosed operation runs (core's use)."""
    token = _CURRENT_BUDGET.set(state)
    try:
        yield
    finally:
        _CURRENT_BUDGET.reset(token)


class SpendSettings(BaseModel):
    """Settings every spending service has; a priced connector's ``Settings`` extends this."""

    model_config = ConfigDict(extra="forbid")

    max_usd: float = Field(
        1.0,
        gt=0,
        le=10_000,
        description="Default budget of one approval, and the most one approval may grant.",
    )
    audit_prompts: bool = Field(
        False,
        description=(
            "Write the full parameters (the prompts) into the audit log; by default only "
            "their length and SHA-256 are recorded."
        ),
    )


class Quote(BaseModel):
    """The most a call can cost, known before it is sent."""

    usd: float = Field(ge=0, allow_inf_nan=False)
    facts: dict[str, Any] = Field(default_factory=dict)
    """What the audit records about the call up front (model, max_tokens); no prompt text."""


class Charge(BaseModel):
    """What a finished call cost."""

    usd: float = Field(ge=0, allow_inf_nan=False)
    facts: dict[str, Any] = Field(default_factory=dict)
    """What the audit records (model, prompt and completion tokens); no prompt text."""


class Meter(BaseModel):
    """A streamed call's cost so far (a lower bound), so core can cut a runaway stream."""

    usd: float = Field(ge=0, allow_inf_nan=False)


StreamItem = dict[str, Any] | Meter | Charge
"""What :meth:`PricedConnector.stream` yields: a chunk to relay (JSON), a meter reading,
or, last, the charge."""


class PricedConnector(Connector):
    """A connector with operations of access ``spend``. See the module's docstring."""

    Settings: ClassVar[type[BaseModel]] = SpendSettings

    async def quote(self, operation: str, params: BaseModel) -> Quote:
        """The worst-case cost of *operation* with *params*, before anything is sent.

        Called for every spend operation. Raise :class:`~airlock.errors.InvalidInput` for
        a call that cannot be priced (an unknown model): core then sends nothing.
        """
        raise ConnectorError(f"{self.name}.{operation} spends money but has no quote")

    def charge(self, operation: str, params: BaseModel, result: BaseModel) -> Charge:
        """What *operation* cost, from its *result* (the service's usage figures)."""
        raise ConnectorError(f"{self.name}.{operation} spends money but reports no charge")

    def stream(self, operation: str, params: BaseModel) -> AsyncIterator[StreamItem]:
        """Run *operation* streamed: yield each chunk as it arrives, then one Charge.

        Only for operations the connector can stream (see ``openai_operations``). Closing
        the iterator early must stop the upstream call.
        """
        raise ConnectorError(f"{self.name}.{operation} cannot be streamed")


def spend_settings(settings: BaseModel) -> SpendSettings | None:
    """The spend part of a service's settings, if its connector spends money."""
    return settings if isinstance(settings, SpendSettings) else None
