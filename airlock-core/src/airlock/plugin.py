"""Everything a plugin needs from Airlock core, in one place: ``from airlock.plugin import ...``.

A plugin (a connector, a notifier, a policy or CLI commands) imports core only from this
module; the modules behind it are core's own and may change between releases. The names
fall into seven groups:

- hooks: ``hookimpl`` marks the functions of a plugin module (see docs/plugins.md), and
  ``get_logger`` gives a plugin a logger whose output has secrets masked;
- connectors: ``Connector``, ``operation``, ``listed_operation`` (an operation found when
  the connector opens), ``Access``, ``Params``, ``CheckResult``,
  ``Done``, ``NoSettings``, ``NoCredentials``, ``OperationSpec``, ``UntrustedText`` to mark
  result fields holding text from outside, ``withhold`` to keep a secret the service
  echoes back out of what is passed on, ``Clock`` / ``SystemClock`` for a connector
  that needs the time, and ``confined_command`` for one that starts a program of its own
  (the program cannot reach Airlock's files), with ``PipeLines`` to read its output a
  line at a time, each line bounded (``LineTooLong``);
- notifiers: ``Notifier`` and what it sends and receives (``Prompt``, ``Delivery``,
  ``Reply``, ``Notice``); for one that talks to a messenger's HTTP API the base classes
  ``HttpNotifier`` and ``HttpApi`` (with ``ApiSettings``, ``ApiUnreachable``,
  ``AnswerTooLarge``, ``parse_json``, ``Backoff``, ``Sleep`` and ``flatten_prompt``);
  ``untrusted_line`` / ``REASON_LIMIT`` to show agent text safely; for one that talks to
  a local service's Unix socket, ``open_private_socket`` (``SocketNotPrivate`` when
  another user could reach it);
- policies: ``Policy``, ``ResultFilter``, ``PolicyContext`` (with its ``Stage``,
  ``SessionFacts`` and ``ServicePermissions``), ``Verdict``, ``Decision``;
- spending: ``PricedConnector`` (a connector whose operations cost money), ``Quote``,
  ``Charge``, ``Meter``, ``StreamItem``, ``SpendSettings``, ``BudgetState`` and
  ``current_budget``; for a connector that serves the OpenAI-compatible endpoint, the
  request fields ``OpenAIChatFields`` (with ``OpenAIChatMessage``) and
  ``OpenAIEmbeddingsFields``;
- errors a plugin raises (each carries its HTTP status and CLI exit code), and
  ``first_problem`` to turn a pydantic ``ValidationError`` into one message naming a field;
- setup commands: ``CliState`` (the ``ctx.obj`` of every command), ``with_client``,
  ``read_totp``, ``store_secret``, ``report_settings``, ``configured_api_base``,
  ``api_base_setting``, and ``refuse_ptrace`` for a command about to hold a secret (a
  token it is given or receives: no process of the person's may read it out of memory).

The contract test suites for a plugin's own tests are in :mod:`airlock.testing`
(``ConnectorContract``, ``NotifierContract``).

Names load on first use, so a plugin module that imports only ``hookimpl`` keeps
``airlock --help`` fast (no pydantic, no HTTP client).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airlock.api_openai import OpenAIChatFields, OpenAIChatMessage, OpenAIEmbeddingsFields
    from airlock.cli.client_support import read_totp, with_client
    from airlock.cli.context import CliState
    from airlock.cli.notifier_setup import (
        api_base_setting,
        configured_api_base,
        report_settings,
        store_secret,
    )
    from airlock.common.clock import Clock, SystemClock
    from airlock.common.lines import LineTooLong, PipeLines
    from airlock.common.logs import get_logger
    from airlock.connector_host.confine import confined_command
    from airlock.errors import (
        AccessDenied,
        AirlockError,
        ApprovalTimedOut,
        ConfigError,
        ConnectorAuthError,
        ConnectorError,
        Forbidden,
        InvalidInput,
        NotEnrolled,
        NotFound,
        NotifierError,
        RateLimited,
        ServiceAnswerLost,
        ServiceOutOfCredit,
        ServiceRateLimited,
        ServiceRefused,
    )
    from airlock.framework.backoff import ApiSettings, Backoff, Sleep
    from airlock.framework.connectors import (
        CheckResult,
        Connector,
        Done,
        OperationSpec,
        Params,
        ToolAlias,
        listed_operation,
        operation,
    )
    from airlock.framework.echoes import withhold
    from airlock.framework.hookspecs import hookimpl
    from airlock.framework.http_notifier import (
        AnswerTooLarge,
        ApiUnreachable,
        HttpApi,
        HttpNotifier,
        flatten_prompt,
        parse_json,
    )
    from airlock.framework.notifiers import Delivery, Notice, Notifier, Prompt, Reply
    from airlock.framework.policies import (
        Decision,
        Policy,
        PolicyContext,
        ResultFilter,
        SessionFacts,
        Stage,
        Verdict,
    )
    from airlock.framework.spending import (
        BudgetState,
        Charge,
        Meter,
        PricedConnector,
        Quote,
        SpendSettings,
        StreamItem,
        current_budget,
    )
    from airlock.framework.untrusted import UNTRUSTED, UntrustedText
    from airlock.models import (
        Access,
        NoCredentials,
        NoSettings,
        Problem,
        first_problem,
        problem_fields,
    )
    from airlock.ptrace import refuse_ptrace
    from airlock.security.private_socket import SocketNotPrivate, open_private_socket
    from airlock.security.prompts import REASON_LIMIT, untrusted_line
    from airlock.settings.config import ServicePermissions

__all__ = [
    "REASON_LIMIT",
    "UNTRUSTED",
    "Access",
    "AccessDenied",
    "AirlockError",
    "AnswerTooLarge",
    "ApiSettings",
    "ApiUnreachable",
    "ApprovalTimedOut",
    "Backoff",
    "BudgetState",
    "Charge",
    "CheckResult",
    "CliState",
    "Clock",
    "ConfigError",
    "Connector",
    "ConnectorAuthError",
    "ConnectorError",
    "Decision",
    "Delivery",
    "Done",
    "Forbidden",
    "HttpApi",
    "HttpNotifier",
    "InvalidInput",
    "LineTooLong",
    "Meter",
    "NoCredentials",
    "NoSettings",
    "NotEnrolled",
    "NotFound",
    "Notice",
    "Notifier",
    "NotifierError",
    "OpenAIChatFields",
    "OpenAIChatMessage",
    "OpenAIEmbeddingsFields",
    "OperationSpec",
    "Params",
    "PipeLines",
    "Policy",
    "PolicyContext",
    "PricedConnector",
    "Problem",
    "Prompt",
    "Quote",
    "RateLimited",
    "Reply",
    "ResultFilter",
    "ServiceAnswerLost",
    "ServiceOutOfCredit",
    "ServicePermissions",
    "ServiceRateLimited",
    "ServiceRefused",
    "SessionFacts",
    "Sleep",
    "SocketNotPrivate",
    "SpendSettings",
    "Stage",
    "StreamItem",
    "SystemClock",
    "ToolAlias",
    "UntrustedText",
    "Verdict",
    "api_base_setting",
    "configured_api_base",
    "confined_command",
    "current_budget",
    "first_problem",
    "flatten_prompt",
    "get_logger",
    "hookimpl",
    "listed_operation",
    "open_private_socket",
    "operation",
    "parse_json",
    "problem_fields",
    "read_totp",
    "refuse_ptrace",
    "report_settings",
    "store_secret",
    "untrusted_line",
    "with_client",
    "withhold",
]

# Where each public name lives; kept equal to the imports above by tests/core.
_HOMES: dict[str, tuple[str, ...]] = {
    "airlock.framework.backoff": ("ApiSettings", "Backoff", "Sleep"),
    "airlock.cli.client_support": ("read_totp", "with_client"),
    "airlock.cli.context": ("CliState",),
    "airlock.cli.notifier_setup": (
        "api_base_setting",
        "configured_api_base",
        "report_settings",
        "store_secret",
    ),
    "airlock.common.clock": ("Clock", "SystemClock"),
    "airlock.common.lines": ("LineTooLong", "PipeLines"),
    "airlock.connector_host.confine": ("confined_command",),
    "airlock.ptrace": ("refuse_ptrace",),
    "airlock.settings.config": ("ServicePermissions",),
    "airlock.framework.connectors": (
        "CheckResult",
        "Connector",
        "Done",
        "OperationSpec",
        "Params",
        "ToolAlias",
        "listed_operation",
        "operation",
    ),
    "airlock.errors": (
        "AccessDenied",
        "AirlockError",
        "ApprovalTimedOut",
        "ConfigError",
        "ConnectorAuthError",
        "ConnectorError",
        "Forbidden",
        "InvalidInput",
        "NotEnrolled",
        "NotFound",
        "NotifierError",
        "RateLimited",
        "ServiceAnswerLost",
        "ServiceOutOfCredit",
        "ServiceRateLimited",
        "ServiceRefused",
    ),
    "airlock.framework.echoes": ("withhold",),
    "airlock.framework.hookspecs": ("hookimpl",),
    "airlock.framework.http_notifier": (
        "AnswerTooLarge",
        "ApiUnreachable",
        "HttpApi",
        "HttpNotifier",
        "flatten_prompt",
        "parse_json",
    ),
    "airlock.common.logs": ("get_logger",),
    "airlock.api_openai": ("OpenAIChatFields", "OpenAIChatMessage", "OpenAIEmbeddingsFields"),
    "airlock.models": (
        "Access",
        "NoCredentials",
        "NoSettings",
        "Problem",
        "first_problem",
        "problem_fields",
    ),
    "airlock.framework.notifiers": ("Delivery", "Notice", "Notifier", "Prompt", "Reply"),
    "airlock.framework.policies": (
        "Decision",
        "Policy",
        "PolicyContext",
        "ResultFilter",
        "SessionFacts",
        "Stage",
        "Verdict",
    ),
    "airlock.framework.untrusted": ("UNTRUSTED", "UntrustedText"),
    "airlock.security.private_socket": ("SocketNotPrivate", "open_private_socket"),
    "airlock.security.prompts": ("REASON_LIMIT", "untrusted_line"),
    "airlock.framework.spending": (
        "BudgetState",
        "Charge",
        "Meter",
        "PricedConnector",
        "Quote",
        "SpendSettings",
        "StreamItem",
        "current_budget",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


if not TYPE_CHECKING:  # mypy sees the imports above; an unknown name stays an error there

    def __getattr__(name: str) -> Any:
        module = _HOME_OF.get(name)
        if module is None:
            raise AttributeError(f"module 'airlock.plugin' has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return list(__all__)
