"""The fields of a call's ``operation`` record, written without a dict of them.

Every operation call that succeeds writes one such record before its answer leaves, so
its fields are the audit's hot path: put in a dict, scrubbed and encoded with sorted
keys (``fields_json``), they took ~6 us of the event loop's ~75 a call. Their names are
fixed here, so they are written in sorted order by hand, each value by ``field_json``
(scrubbed and encoded exactly as ``fields_json`` does it): ~2 us. The text is the same
as ``fields_json`` of those fields, byte for byte (a property test holds it to that);
anything else (a spend call's facts, a caller with other fields) takes ``fields_json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airlock.security._audit_fields import field_json, fields_json

__all__ = ["WHERE_FIELDS", "ok_fields"]

WHERE_FIELDS = frozenset({"uid", "pid", "session", "service", "op"})
"""The call's own fields (who, which session, what), as the gateway gathers them."""


def ok_fields(
    where: Mapping[str, Any],
    params: Any,
    *,
    count: int,
    items: int | None,
    duration_ms: float,
    approval: str | None,
    facts: Mapping[str, Any],
) -> str:
    """``fields_json`` of a successful call's record: *where*'s fields, its parameters as
    audited, ``outcome="ok"``, the session's use count, the result's item count, the
    duration, the write approval used and a spend call's *facts*."""
    if facts or where.keys() != WHERE_FIELDS:
        return fields_json(
            {
                **where,
                "params": params,
                "outcome": "ok",
                "count": count,
                "items": items,
                "duration_ms": duration_ms,
                "approval": approval,
                **facts,
            }
        )
    # Sorted by name, as fields_json writes them.
    return (
        f',"approval":{field_json(approval)},"count":{field_json(count)}'
        f',"duration_ms":{field_json(duration_ms)},"items":{field_json(items)}'
        f',"op":{field_json(where["op"])},"outcome":"ok","params":{field_json(params)}'
        f',"pid":{field_json(where["pid"])},"service":{field_json(where["service"])}'
        f',"session":{field_json(where["session"])},"uid":{field_json(where["uid"])}'
    )
