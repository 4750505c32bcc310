"""Small types shared by core and plugins that belong to no one component.

``Access`` is the level a session grants and an operation needs; ``RequestStatus`` where
an access request stands; ``NoSettings`` and
``NoCredentials`` are what a connector or notifier without either declares; and
:func:`first_problem` turns pydantic's list of complaints into the one message and field
a person is shown (``params.limit: Input should be less than or equal to 100``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "Access",
    "NoCredentials",
    "NoSettings",
    "Problem",
    "RequestStatus",
    "first_problem",
    "problem_fields",
]


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    SPEND = "spend"
    """Costs money: runs within a budget the person approved (see docs/plugins.md)."""
    PERSON = "person"
    """The person's own login to the dashboard (docs/dashboard.md): allows no operation,
    and no agent can ask for it."""

    def allows(self, needed: Access) -> bool:
        """Every agent session may read; a write session may write, a spend session may
        spend. A person session runs no operation at all."""
        if self is Access.PERSON or needed is Access.PERSON:
            return False
        return needed is Access.READ or self is needed


class RequestStatus(StrEnum):
    """Where an access request stands; it leaves ``pending`` once, for one of the others."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    REVOKED = "revoked"
    """Approved, then cancelled by "revoke everything" before its session was collected."""


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(NamedTuple):
    """The first thing pydantic refused: where (dotted, may be empty) and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def first_problem(exc: ValidationError, *, within: str = "") -> Problem:
    """The first error of *exc*; *within* prefixes the field (``params`` → ``params.limit``).

    pydantic's own messages describe the expected value, not the input; a validator's own
    message may quote the input, so report secrets by :attr:`Problem.field` alone.
    """
    errors = exc.errors()
    if not errors:
        return Problem(within, "invalid value")
    path = [within] if within else []
    path += [str(part) for part in errors[0]["loc"]]
    message = errors[0]["msg"]
    if errors[0]["type"] == "value_error":  # a validator's message, not pydantic's prefix
        message = message.removeprefix("Value error, ")
    return Problem(".".join(path), message)


def problem_fields(exc: ValidationError, *, most: int = 5) -> list[str]:
    """The fields *exc* found fault with, sorted, at most *most* (never the values): what a
    log line may say about input that is skipped rather than answered."""
    places = {".".join(str(part) for part in error["loc"]) for error in exc.errors()}
    return sorted(places)[:most]
