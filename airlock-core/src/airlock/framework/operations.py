"""What an operation call is, as one string: canonical parameters and the hash a write
approval is bound to.

The person approves one exact call; the gateway and the ``scope`` policy later recognise
that call by the same hash. Approvals, the gateway and the policies all take it from here,
so the three can never canonicalise differently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airlock.framework.connectors import OperationSpec


def canonical_params(params: Mapping[str, Any]) -> str:
    """*params* as one JSON text: sorted keys, no spaces, unicode kept."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_operation_params(spec: OperationSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate *params* with the operation's model (or JSON Schema) and return them in
    canonical form."""
    model = spec.parse_params(params, within="params")
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


def operation_hash(service: str, operation: str, params: Mapping[str, Any]) -> str:
    """What a write approval is bound to: service, operation and canonical parameters."""
    text = canonical_params({"service": service, "operation": operation, "params": params})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
