"""Logs never carry secrets, whatever a call site passes."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from pydantic import SecretStr

from airlock.logs import configure_logging

TOKEN = "alk_" + "Q" * 43


def test_secret_values_are_masked_in_json_logs(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level=logging.INFO)
    try:
        log = structlog.get_logger("test")
        log.info(
            "session_issued",
            password="hunter2-canary",
            bot_token="123:ABC-canary",
            detail=f"token {TOKEN} was used",
            nested={"api_key": "sk-canary", "service": "mail"},
            field=SecretStr("secretstr-canary"),
        )
    finally:
        structlog.reset_defaults()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    for canary in ("hunter2-canary", "123:ABC-canary", TOKEN, "sk-canary", "secretstr-canary"):
        assert canary not in line
    assert record["nested"]["service"] == "mail"
    assert record["event"] == "session_issued"
