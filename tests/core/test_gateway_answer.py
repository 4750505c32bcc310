"""The operation answer's shortcuts: its JSON built around the result's own, and the
redaction filter skipping results that provably hold nothing it would mask."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_serializer

from airlock.api import OperationOut
from airlock.daemon.http import json_model, operation_body
from airlock.default_plugins._policies import RedactCodesPolicy, never_redacted
from airlock.framework.connectors import Access
from airlock.framework.policies import PolicyContext, SessionFacts, Stage, UntrustedText

CODE = "Your code is 123456"


class Inner(BaseModel):
    at: datetime
    ratio: float
    tags: list[str]


class Result(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    folder: str = Field(alias="folderName")
    count: int = Field(ge=0)
    kind: Literal["a", "b"] = "a"
    inner: Inner | None = None
    pair: tuple[int, str] = (1, "x")


def _op() -> PolicyContext:
    session = SessionFacts(id="ses_1", services=("mail",), access=Access.READ, uid=1000)
    return PolicyContext(
        stage=Stage.OPERATION, service="mail", access=Access.READ, operation="op", session=session
    )


def test_the_answer_is_the_bytes_the_envelope_model_gives() -> None:
    result = Result(
        folderName='Ünïcode "quoted" \n',
        count=3,
        inner=Inner(at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), ratio=0.1, tags=["a", "é"]),
    )
    for service, operation in (("mail", "count_unread"), ('we"ird', "näme")):
        envelope = OperationOut(
            result=result.model_dump(mode="json", by_alias=True),
            service=service,
            operation=operation,
        )
        body = operation_body(result, service, operation)
        assert body == json_model(envelope).body
        assert json.loads(body)["result"]["folderName"] == result.folder


def test_closed_results_without_text_keys_are_never_redacted() -> None:
    assert never_redacted(Result)
    mail_like = Result(folderName=CODE, count=1)
    assert RedactCodesPolicy().filter_result(_op(), mail_like) is mail_like


class Subject(BaseModel):
    subject: str


class Marked(BaseModel):
    note: UntrustedText


class Nested(BaseModel):
    items: list[Subject]


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    n: int


class Anything(BaseModel):
    data: Any


class Mapping(BaseModel):
    data: dict[str, str]


class Computed(BaseModel):
    n: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text(self) -> str:
        return CODE


class Serialized(BaseModel):
    n: int

    @field_serializer("n")
    def _as_dict(self, n: int) -> dict[str, str]:
        return {"text": CODE}


class Aliased(BaseModel):
    n: Annotated[str, Field(serialization_alias="body")]


def test_results_that_may_hold_text_keys_are_still_redacted() -> None:
    for model in (Subject, Marked, Nested, Loose, Anything, Mapping, Computed, Serialized, Aliased):
        assert not never_redacted(model), model
    nested = Nested(items=[Subject(subject=CODE)])
    filtered = RedactCodesPolicy().filter_result(_op(), nested)
    assert isinstance(filtered, Nested)
    assert "123456" not in filtered.items[0].subject
    anything = Anything(data={"text": CODE})
    masked = RedactCodesPolicy().filter_result(_op(), anything)
    assert isinstance(masked, Anything)
    assert "123456" not in masked.data["text"]
