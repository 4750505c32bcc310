"""The default policies (see docs/architecture.md): scope, read-only, rate-limit, redact-codes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airlock.framework.hookspecs import hookimpl

if TYPE_CHECKING:
    from airlock.framework.policies import Policy


@hookimpl
def register_policies() -> Iterable[Policy]:
    from airlock.default_plugins._policies import (
        RateLimitPolicy,
        ReadOnlyPolicy,
        RedactCodesPolicy,
        ScopePolicy,
    )

    return [ScopePolicy(), ReadOnlyPolicy(), RateLimitPolicy(), RedactCodesPolicy()]
