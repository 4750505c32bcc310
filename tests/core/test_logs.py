"""Logs never carry secrets, whatever a call site passes."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from pydantic import SecretStr

from airlock.common.logs import configure_logging, get_logger

TOKEN = "alk_" + "Q" * 43
CLAIM = "clm_" + "R" * 43
LOGIN = "ald_" + "S" * 43


def test_secret_values_are_masked_in_json_logs(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level=logging.INFO)
    try:
        log = structlog.get_logger("test")
        log.info(
            "session_issued",
            password="hunter2-canary",
            bot_token="123:ABC-canary",
            detail=f"token {TOKEN} was used",
            request=f"collected with {CLAIM}",
            cookie=[f"airlock_login={LOGIN}"],
            nested={"api_key": "sk-canary", "service": "mail"},
            field=SecretStr("secretstr-canary"),
        )
    finally:
        structlog.reset_defaults()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    for canary in (
        "hunter2-canary",
        "123:ABC-canary",
        TOKEN,
        CLAIM,
        LOGIN,
        "sk-canary",
        "secretstr-canary",
    ):
        assert canary[:12] not in line, canary[:12]
    assert record["request"] == "collected with [redacted]"
    assert record["nested"]["service"] == "mail"
    assert record["event"] == "session_issued"


def _fail_holding(secret: str) -> None:
    raise RuntimeError("the connector broke")


def test_console_tracebacks_never_show_local_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A traceback on the daemon's terminal names the frames, not their locals: a frame
    may hold a code, a token or a credential (rich's default would print them)."""
    configure_logging(json=False, level=logging.INFO)
    try:
        log = get_logger("test")
        secret = "-".join(("vault", "password", "canary"))  # a local, not in the source
        try:
            _fail_holding(secret)
        except RuntimeError:
            log.exception("operation_failed")
    finally:
        structlog.reset_defaults()
    err = capsys.readouterr().err
    assert "the connector broke" in err
    assert "_fail_holding" in err
    assert "vault-password-canary" not in err


def test_loggers_import_structlog_only_when_they_log() -> None:
    """Registering plugins and printing help must not pay for structlog (and rich)."""
    import subprocess
    import sys

    code = (
        "import sys; from airlock.common.logs import get_logger; log = get_logger('x'); "
        "import airlock.security.approvals, airlock.security.channels; "
        "print('structlog' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_library_error_quoting_a_request_is_logged_without_its_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """aiohttp logs a request it cannot parse with the bytes it choked on (a header line
    with a session token or a TOTP code): the daemon's log keeps the error's type and
    where it came from, never its text."""
    configure_logging(json=True, level=logging.INFO)
    try:
        try:
            raise ValueError(f"Invalid header token: b'Authorization: Bearer {TOKEN}' 482913")
        except ValueError as exc:
            logging.getLogger("aiohttp.server").exception(
                "Error handling request from %s", f"peer holding {CLAIM}", exc_info=exc
            )
    finally:
        structlog.reset_defaults()
        root = logging.getLogger()
        root.handlers = [h for h in root.handlers if type(h).__name__ != "_LibraryRecords"]
    err = capsys.readouterr().err
    assert TOKEN[:12] not in err
    assert CLAIM[:12] not in err
    assert "482913" not in err
    record = json.loads(err.strip().splitlines()[-1])
    assert record["event"] == "Error handling request from peer holding [redacted]"
    assert record["error"] == "ValueError"
    assert record["library"] == "aiohttp.server"
    assert record["level"] == "error"
    assert any("test_a_library_error_quoting" in frame for frame in record["frames"])


def test_a_failed_tasks_repr_in_asyncios_log_line_is_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """asyncio's "Task exception was never retrieved" goes on with the task's repr, and
    with it the exception's text: only the first line is kept."""
    configure_logging(json=True, level=logging.INFO)
    try:
        logging.getLogger("asyncio").error(
            "Task exception was never retrieved\nfuture: <Task finished exception="
            "ValueError('wrong code 482913 for request ABCD-1234')>"
        )
    finally:
        structlog.reset_defaults()
        root = logging.getLogger()
        root.handlers = [h for h in root.handlers if type(h).__name__ != "_LibraryRecords"]
    err = capsys.readouterr().err
    assert "482913" not in err
    assert json.loads(err.strip().splitlines()[-1])["event"] == (
        "Task exception was never retrieved"
    )
