"""An operation call's body read without its model gives what the model gives: the
same params, and for anything else the same 400."""

from __future__ import annotations

import pytest

from airlock import api
from airlock.daemon.http import operation_params, parse_body
from airlock.errors import InvalidInput


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{}",
        b'{"params": {}}',
        b'{"params": {"folder": "INBOX", "limit": 5, "deep": {"a": [1, {"b": null}]}}}',
        b'{"params": {"\\u00e9t\\u00e9": "\\ud83d\\ude00"}}',
    ],
)
def test_a_usual_body_gives_the_models_params(raw: bytes) -> None:
    assert operation_params(raw) == parse_body(raw, api.OperationIn).params


@pytest.mark.parametrize(
    "raw",
    [
        b'{"params": null}',
        b'{"params": [1, 2]}',
        b'{"params": "x"}',
        b'{"params": {}, "extra": 1}',
        b'{"other": 1}',
        b"[]",
        b"not json",
        b'{"params": {"a": "\\ud800"}}',
        b'{"params": ' + b"[" * 40 + b"]" * 40 + b"}",
    ],
)
def test_any_other_body_is_refused_as_the_model_refuses_it(raw: bytes) -> None:
    with pytest.raises(InvalidInput) as ours:
        operation_params(raw)
    with pytest.raises(InvalidInput) as models:
        parse_body(raw, api.OperationIn)
    assert (ours.value.message, ours.value.field) == (models.value.message, models.value.field)
