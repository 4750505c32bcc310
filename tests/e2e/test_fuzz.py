"""Generated requests from the daemon's own OpenAPI document: no 5xx, no crash, and the
audit chain still verifies afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from daemon_harness import Airlock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
EXTREME_DATES = st.one_of(
    st.sampled_from(
        ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999999d", "0001-01-01"]
    ),
    st.builds(
        lambda when, minutes: when.isoformat() + f"{minutes // 60:+03d}:{minutes % 60:02d}",
        st.datetimes(),
        st.integers(-23 * 60, 23 * 60),
    ),
)
NASTY_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ["../../etc/passwd", "%00", "\r\nX: y", "' OR 1=1", "{}", "A" * 300, "req_", "ses_"]
    ),
    EXTREME_DATES,
)


@dataclass(frozen=True)
class Raw:
    """Body bytes sent as they are: nesting too deep for json.dumps to produce."""

    content: bytes


def _nested(depth: int, brackets: tuple[bytes, bytes]) -> bytes:
    return brackets[0] * depth + b"1" + brackets[1] * depth


DEEP_VALUES = st.builds(
    _nested,
    st.one_of(st.integers(30, 40), st.integers(900, 1100), st.integers(50_000, 100_000)),
    st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]),
)

HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airlock]:
    running = Airlock(tmp_path_factory.mktemp("fuzz") / "home").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def document(daemon: Airlock) -> dict[str, Any]:
    with daemon.client() as client:
        doc: dict[str, Any] = client.get("/v1/openapi.json").json()
    return doc


def _body_for(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Objects with the schema's property names and values of any JSON type, or anything."""
    ref = schema.get("$ref", "")
    target = components.get(ref.rsplit("/", 1)[-1], {}) if ref else schema
    names = list(target.get("properties", {}))
    shaped = st.fixed_dictionaries({}, optional={name: JSON for name in names}) if names else JSON
    deep = st.builds(
        lambda name, value: Raw(b'{"' + name.encode() + b'": ' + value + b"}"),
        st.sampled_from(names or ["x"]),
        DEEP_VALUES,
    )
    return st.one_of(shaped, JSON, deep, st.builds(Raw, DEEP_VALUES))


@st.composite
def calls(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, str, dict[str, str], Any]:
    path = draw(st.sampled_from(sorted(document["paths"])))
    method = draw(st.sampled_from(sorted(document["paths"][path])))
    operation = document["paths"][path][method]
    url = path
    for param in operation["parameters"]:
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", quote(draw(NASTY_TEXT), safe="") or "x")
    query = {
        p["name"]: draw(NASTY_TEXT)
        for p in operation["parameters"]
        if p["in"] == "query" and draw(st.booleans())
    }
    query.pop("wait", None)  # a long-poll would only slow the fuzzer down
    headers = {
        # h11 refuses to send values with surrounding whitespace; strip them here.
        p["name"]: draw(HEADER_TEXT).strip()
        for p in operation["parameters"]
        if p["in"] == "header"
    }
    body = None
    if "requestBody" in operation:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        body = draw(_body_for(schema, document["components"]["schemas"]))
    if query:
        url += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
    return method.upper(), url, headers, body


def test_generated_requests_never_get_a_5xx(daemon: Airlock, document: dict[str, Any]) -> None:
    client = daemon.client()

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(call=calls(document))
    def one(call: tuple[str, str, dict[str, str], Any]) -> None:
        method, url, headers, body = call
        if isinstance(body, Raw):
            content: bytes | None = body.content
        else:
            content = None if body is None else json.dumps(body).encode()
        response = client.request(method, url, headers=headers, content=content)
        assert response.status_code < 500, (method, url, response.text)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"]
            assert error["message"]

    try:
        one()
        assert client.get("/v1/status").status_code == 200
    finally:
        client.close()
    assert daemon.proc is not None
    assert daemon.proc.poll() is None, "the daemon crashed"
    verified = daemon.audit_verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_random_bytes_as_bodies_are_refused_cleanly(daemon: Airlock) -> None:
    with daemon.client() as client:

        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            raw=st.binary(max_size=200),
            path=st.sampled_from(["/v1/requests", "/v1/ops/mail/search", "/v1/credentials/mail"]),
        )
        def one(raw: bytes, path: str) -> None:
            response = client.post(path, content=raw, headers={"Authorization": "Bearer alk_x"})
            assert 400 <= response.status_code < 500, response.text

        one()
    assert Path(daemon.paths.socket).exists()
