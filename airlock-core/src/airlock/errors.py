"""Every error Airlock raises on purpose; one tree rooted at ``AirlockError``.

::

    AirlockError
    ├── ConfigError               config.yaml invalid, unknown connector or notifier
    ├── PluginError               a plugin failed to load, or two register one id
    ├── InvalidInput              bad parameters or body (400)
    ├── NotFound                  unknown service, operation, request or session (404)
    ├── Unauthenticated           no, unknown, expired or revoked token (401)
    ├── Forbidden                 out of scope, wrong uid, not the owner (403)
    │   ├── AccessDenied          the person (or a policy) said no (403, exit 3)
    │   └── ApprovalRequired      a write needs its own approval first (403)
    ├── MethodNotAllowed          no such method on this path (405)
    ├── NotPending                the request was already answered or expired (409)
    ├── PayloadTooLarge           body over the limit (413)
    ├── ApprovalError             a TOTP code could not approve
    │   ├── InvalidCode           wrong or already used code
    │   ├── NotEnrolled           no TOTP secret yet
    │   └── ApprovalsLocked       too many wrong codes (423)
    ├── ApprovalTimedOut          nobody answered in time (exit 4)
    ├── RequestTimedOut           a request body stopped arriving (408)
    ├── RateLimited               too many operations (429)
    │   └── ServiceRateLimited    the service asked us to slow down (429, retry_after)
    ├── BudgetExhausted           a spend call the budget left cannot cover (402)
    ├── VaultError                credentials file problems
    │   ├── VaultLocked           passphrase vault not unlocked yet
    │   └── VaultCorrupt          wrong key or tampered file
    ├── AuditError                the audit record could not be written (fail closed)
    ├── ConnectorError            the service failed (a spend call may have cost)
    │   ├── ServiceRefused        the service did not take the call (nothing billed)
    │   │   ├── ConnectorAuthError  the service rejected the credentials
    │   │   └── ServiceOutOfCredit  the account at the service has no money left (402)
    │   └── ServiceAnswerLost     the call went out, its answer did not come back whole
    │       └── ConnectorTimeout  the operation took longer than allowed (504)
    ├── NotifierError             a notifier could not reach its messenger (prompt not sent)
    ├── DaemonUnreachable         no daemon on the socket (exit 5)
    └── AlreadyRunning            a daemon already answers on the socket

Each class carries the HTTP ``status``, a stable machine ``code`` and the CLI
``exit_code`` used for it, so the daemon, the clients and the CLI agree.
:data:`HTTP_ERRORS` is the one table from an HTTP status to its error and meaning.
Messages say what went wrong and what to do next; they never contain secrets.
"""

from __future__ import annotations

from typing import ClassVar

#: The hint of a "no service named ..." answer (a config change since start aside).
SERVICES_LISTED = "`airlock services` (GET /v1/services) lists the configured services"


class AirlockError(Exception):
    """Base of every error Airlock raises on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "error"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        if self.field:
            body["field"] = self.field
        return body


class ConfigError(AirlockError):
    code = "config_error"


class PluginError(AirlockError):
    code = "plugin_error"


class InvalidInput(AirlockError):
    status = 400
    code = "invalid_input"
    exit_code = 2


class NotFound(AirlockError):
    status = 404
    code = "not_found"


class Unauthenticated(AirlockError):
    status = 401
    code = "unauthenticated"


class Forbidden(AirlockError):
    status = 403
    code = "forbidden"
    exit_code = 3


class AccessDenied(Forbidden):
    code = "denied"


class ApprovalRequired(Forbidden):
    code = "approval_required"


class MethodNotAllowed(AirlockError):
    status = 405
    code = "method_not_allowed"


class NotPending(AirlockError):
    status = 409
    code = "not_pending"


class PayloadTooLarge(AirlockError):
    status = 413
    code = "payload_too_large"


class ApprovalError(AirlockError):
    status = 403
    code = "approval_failed"
    exit_code = 1


class InvalidCode(ApprovalError):
    code = "invalid_code"


class CodeAlreadyUsed(InvalidCode):
    """The last accepted code sent again: an honest repeat, not a guess (not counted)."""


class NotEnrolled(ApprovalError):
    status = 409
    code = "totp_not_enrolled"

    def __init__(self, message: str = "TOTP not enrolled", **kw: str | None) -> None:
        kw.setdefault("hint", "run `airlock totp setup`")
        super().__init__(message, **kw)


class ApprovalsLocked(ApprovalError):
    status = 423
    code = "approvals_locked"


class ApprovalTimedOut(AirlockError):
    status = 408
    code = "approval_timed_out"
    exit_code = 4


class RequestTimedOut(AirlockError):
    """A request's body stopped arriving (``daemon.idle_timeout``); nothing was done."""

    status = 408
    code = "request_timeout"


class RateLimited(AirlockError):
    status = 429
    code = "rate_limited"


class ServiceRateLimited(RateLimited):
    code = "service_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: str | None):
        super().__init__(message, **kw)
        self.retry_after = retry_after
        """Seconds the service asked to wait (sent on as the ``Retry-After`` header)."""


class BudgetExhausted(AirlockError):
    status = 402
    code = "budget_exhausted"
    exit_code = 3


class OutOfCodes(AirlockError):
    """Every 4-character request code is held by a stored request."""

    status = 503
    code = "out_of_request_codes"


class VaultError(AirlockError):
    status = 503
    code = "vault_error"


class VaultLocked(VaultError):
    code = "vault_locked"


class VaultCorrupt(VaultError):
    code = "vault_corrupt"


class AuditError(AirlockError):
    status = 503
    code = "audit_unavailable"


class StateUnavailable(AirlockError):
    """The state database refused a write: another process holds it locked past the
    wait, or its disk is full."""

    status = 503
    code = "state_unavailable"


def state_unavailable(path: object, *, revocation_held: bool = False) -> StateUnavailable:
    """What the person is told when the state database at *path* refused a write;
    *revocation_held*: the write was a revocation on record, refused by the daemon already."""
    held = (
        ". The sessions and approvals whose revocation is recorded are refused already; "
        "the database is written when it takes writes again"
        if revocation_held
        else ""
    )
    return StateUnavailable(
        f"the state database ({path}) could not be written: another process holds it "
        f"locked, or the disk is full. What was asked was not done, or not all of it{held}",
        hint="close what holds the file open (a sqlite3 shell, a backup) and try again",
    )


class ConnectorError(AirlockError):
    """The service failed. A spend call that ends so is counted at its reservation
    unless the error is a :class:`ServiceRefused` (fail closed: it may have cost)."""

    status = 502
    code = "service_error"


class ServiceRefused(ConnectorError):
    """The service did not take the call: it answered with a refusal (an error status
    before any of an answer), or it could not be reached at all. Nothing was billed, so
    a spend call that ends so costs nothing."""

    code = "service_refused"


class ConnectorAuthError(ServiceRefused):
    code = "service_auth_failed"


class ServiceAnswerLost(ConnectorError):
    """The request reached the service (or may have) but its answer did not come back
    whole: cut off, unreadable, or waited for too long. A spend call that ends so is
    counted at its reservation, since the service may have billed it."""

    code = "service_answer_lost"


class ConnectorTimeout(ServiceAnswerLost):
    status = 504
    code = "service_timeout"


class ServiceOutOfCredit(ServiceRefused):
    status = 402
    code = "service_out_of_credit"


class NotifierError(AirlockError):
    status = 502
    code = "notifier_error"


class DaemonUnreachable(AirlockError):
    status = 503
    code = "daemon_unreachable"
    exit_code = 5


class AlreadyRunning(AirlockError):
    code = "already_running"


# Every error status the daemon answers with: the class that stands for it when the body
# names no known code (a proxy, an aiohttp default page), and what it means (OpenAPI).
HTTP_ERRORS: dict[int, tuple[type[AirlockError], str]] = {
    400: (InvalidInput, "bad input (the field at fault is named)"),
    401: (Unauthenticated, "no or unknown token"),
    402: (BudgetExhausted, "the session's budget or the service's credit is spent"),
    403: (Forbidden, "out of scope or denied"),
    404: (NotFound, "unknown service, operation or request"),
    405: (MethodNotAllowed, "no such method on this path"),
    408: (ApprovalTimedOut, "nobody answered in time"),
    409: (NotPending, "request no longer pending"),
    413: (PayloadTooLarge, "body over 1 MiB"),
    423: (ApprovalsLocked, "approvals locked"),
    429: (RateLimited, "rate limited"),
    502: (ConnectorError, "the service failed or refused"),
    503: (VaultError, "the vault, the audit log or the state database is unavailable"),
    504: (ConnectorTimeout, "the service took longer than connector_host.timeout"),
}


def error_class_for_status(status: int) -> type[AirlockError]:
    """The error class an HTTP *status* stands for (``AirlockError`` when none does)."""
    return HTTP_ERRORS.get(status, (AirlockError, ""))[0]


def error_class_for(code: str) -> type[AirlockError]:
    """The error class whose ``code`` is *code* (clients rebuild daemon errors with it)."""
    stack: list[type[AirlockError]] = [AirlockError]
    while stack:
        cls = stack.pop()
        if cls.code == code:
            return cls
        stack.extend(cls.__subclasses__())
    return AirlockError
