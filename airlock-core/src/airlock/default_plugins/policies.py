"""The default policies (see docs/architecture.md): scope, read-only, rate-limit, redact-codes."""

from __future__ import annotations

from collections.abc import Iterable

from airlock.framework.hookspecs import hookimpl


@hookimpl
def register_policies() -> Iterable[str]:
    return [
        "scope = airlock.default_plugins._policies:ScopePolicy",
        "read-only = airlock.default_plugins._policies:ReadOnlyPolicy",
        "rate-limit = airlock.default_plugins._policies:RateLimitPolicy",
        "redact-codes = airlock.default_plugins._policies:RedactCodesPolicy",
    ]
