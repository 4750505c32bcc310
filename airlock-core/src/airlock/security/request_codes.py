"""What a request is known by: its 4-character code, its claim secret (stored only as a
hash) and the fingerprint shown to both the agent and the person."""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import secrets
from dataclasses import replace

from airlock.errors import OutOfCodes
from airlock.framework.operations import canonical_params
from airlock.state.store import AccessRequest, StateStore

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}$")


def claim_hash(claim: str) -> str:
    """How a claim secret is stored and compared."""
    return hashlib.sha256(claim.encode("utf-8")).hexdigest()


def new_claim() -> str:
    """A fresh claim secret: whoever holds it may collect the request's session."""
    return "clm_" + secrets.token_urlsafe(24)


def new_code(store: StateStore) -> str:
    """A request code no stored request holds; codes come back once purged."""
    for _ in range(20):
        code = "".join(secrets.choice(CROCKFORD) for _ in range(4))
        if store.get_request_by_code(code) is None:
            return code
    used = store.used_codes()
    free = [c for c in all_codes() if c not in used]
    if not free:
        raise OutOfCodes(
            "no free request code: every code is held by a stored request",
            hint="finished requests are deleted after approvals.retention; "
            "answer or deny the waiting ones",
        )
    return secrets.choice(free)


@functools.cache
def all_codes() -> tuple[str, ...]:
    return tuple("".join(c) for c in itertools.product(CROCKFORD, repeat=4))


def fingerprinted(request: AccessRequest) -> AccessRequest:
    """A short digest of what is asked, shown to both the agent and the person."""
    material = canonical_params(
        {
            "id": request.id,
            "services": list(request.services),
            "access": request.access,
            "ttl": request.ttl,
            "reason": request.reason,
            "operation": request.operation,
        }
        | ({"budget_nano": request.budget_nano} if request.budget_nano is not None else {})
    )
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:8].upper()
    return replace(request, fingerprint=f"{digest[:4]}-{digest[4:]}")
