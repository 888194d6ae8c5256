"""Schemathesis against the dev server on loopback, from the API's own description
(functions/openapi.yaml): whatever a client sends, no 5xx, and every answer is one the
description documents (status, content type, headers, body schema). POST /chat runs as JSON and
as an event stream. Deterministic (a fixed sequence of examples) and bounded in time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, HookContext
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.loopback import DevServer, dev_server

SPEC = Path(__file__).resolve().parents[1] / "functions" / "openapi.yaml"
# About 7 s for the file on an idle 2-core machine (600 turns, each also streamed, and 300
# history reads); keep it under a minute on a loaded one.
EXAMPLES_PER_OPERATION = 300
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    # Limits out of reach: the fuzzer explores the API, not the 429 (tests/test_chat_api.py).
    settings = {"RATE_LIMIT_PER_MINUTE": "1000000", "CLIENT_RATE_LIMIT_PER_MINUTE": "1000000"}
    with dev_server(tmp_path_factory.mktemp("fuzz"), settings) as server:
        yield server


# Loaded at import, not from a fixture: schemathesis's lazy loader does not run on pytest 9.
schema = schemathesis.openapi.from_path(SPEC)
schema.config.generation.update(
    max_examples=EXAMPLES_PER_OPERATION, deterministic=True, database="none"
)
# Wrong methods, but none that http.server (the dev server) cannot route: it answers TRACE and
# QUERY with its own 501 before any function runs, which API Gateway or Cloud Run never would.
schema.config.phases.coverage.unexpected_methods = {"get", "put", "post", "delete", "patch"}


@schema.hook
def flatmap_body(context: HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Bodies as generated, and the same with what generators never make but clients send: a
    lone surrogate escape in every string (generated text is always valid UTF-8), and deep
    nesting."""
    if not isinstance(body, dict):
        return st.just(body)
    with_surrogates = {k: v + "\ud800" if isinstance(v, str) else v for k, v in body.items()}
    nested: Any = []
    for _ in range(100):
        nested = [nested]
    return st.sampled_from([body, with_surrogates, {**body, "extra": nested}])


@schema.parametrize()
def test_the_api_answers_every_request_as_described(case: Case, devserver: DevServer) -> None:
    case.call_and_validate(base_url=devserver.url, timeout=30, checks=CHECKS)
    if case.method == "POST" and case.path == "/chat":
        streamed = case.call_and_validate(
            base_url=devserver.url,
            headers={"Accept": "text/event-stream"},
            timeout=30,
            checks=CHECKS,
        )
        if streamed.status_code == 200:
            assert_a_whole_stream(streamed.text)


def assert_a_whole_stream(text: str) -> None:
    """A 200 stream ends with ``done`` or a documented ``error``, never an internal one."""
    events = [_event(block) for block in text.strip().split("\n\n") if block]
    assert events, "an empty stream"
    name, data = events[-1]
    assert name in ("done", "error"), events[-1]
    if name == "error":
        assert data["error"]["code"] != "internal", data
    assert all(n in ("delta", "replace") for n, _ in events[:-1]), events


def _event(block: str) -> tuple[str, Any]:
    fields = dict(line.split(": ", 1) for line in block.splitlines())
    return fields["event"], json.loads(fields["data"])


def test_a_conversation_with_cards_reads_back_as_described(devserver: DevServer) -> None:
    """The fuzzer only ever reads unknown sessions: a real one's history, its replies' cards
    included, matches the description too."""
    with httpx.Client(base_url=devserver.url, timeout=30) as http:
        turn = http.post("/chat", json={"message": "Avez-vous des sandales en cuir ?"})
        history = http.get("/chat/history", params={"session_id": turn.json()["session_id"]})
    schema["/chat"]["POST"].validate_response(turn)
    schema["/chat/history"]["GET"].validate_response(history)
    cards = [m["products"] for m in history.json()["messages"]]
    assert cards[0] == [] and cards[1] == turn.json()["products"] != []
