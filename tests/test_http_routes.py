"""Path parameters: a route's ``{name}`` segment matches one path segment and reaches the handler
decoded once as ``request.params``, the same through every adapter (the neutral call, AWS
Lambda events, the real functions-framework)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.http import HTTPError, HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter
from tests.eventlib import load_event

KNOWN_PROVIDERS = {"wave", "stripe"}

hooks = HTTPFunction("hooks", "/hooks")


@hooks.route("/payments/{provider}", "POST")
def receive_payment(request: Request) -> Response:
    # The router does not know the providers: an unknown one reaches this handler, which decides.
    if request.params["provider"] not in KNOWN_PROVIDERS:
        raise HTTPError(404, "unknown_provider", "no such payment provider")
    return json_response(200, {"params": dict(request.params)})


@hooks.route("/payments/{provider}/events/{event}", "GET")
def payment_event(request: Request) -> Response:
    return json_response(200, {"params": dict(request.params)})


@hooks.route("/payments/refunds", "GET")
def refunds(request: Request) -> Response:
    return json_response(200, {"static": True, "params": dict(request.params)})


hooks_lambda = lambda_adapter(hooks)
hooks_gcf = gcf_adapter(hooks)

Call = Callable[[str, str], tuple[int, dict[str, str], Any]]


def _neutral(method: str, path: str) -> tuple[int, dict[str, str], Any]:
    response = hooks(Request(method, path))
    return response.status, response.headers, json.loads(response.body_bytes())


def _lambda(method: str, path: str) -> tuple[int, dict[str, str], Any]:
    event = load_event("apigw_v2_chat_post")
    event["rawPath"] = path  # API Gateway passes the path as sent, percent-encoded
    event["rawQueryString"] = ""
    event["requestContext"]["http"].update(method=method, path=path)
    event["body"] = ""
    event["isBase64Encoded"] = False
    out = hooks_lambda(event, None)
    return out["statusCode"], out["headers"], json.loads(base64.b64decode(out["body"]))


@pytest.fixture(params=["neutral", "lambda", "gcf"])
def call(request: pytest.FixtureRequest, tmp_path: Path) -> Call:
    if request.param == "neutral":
        return _neutral
    if request.param == "lambda":
        return _lambda
    from functions_framework import create_app

    source = tmp_path / "main.py"
    source.write_text("from tests.test_http_routes import hooks_gcf as hooks\n")
    client = create_app("hooks", str(source)).test_client()

    def gcf(method: str, path: str) -> tuple[int, dict[str, str], Any]:
        # The function's URL is its mount: Cloud Functions passes what follows it.
        response = client.open(path.removeprefix("/hooks"), method=method)
        return response.status_code, dict(response.headers), response.get_json()

    return gcf


def test_a_parameter_is_matched_and_passed(call: Call) -> None:
    status, _, body = call("POST", "/hooks/payments/wave")
    assert (status, body) == (200, {"params": {"provider": "wave"}})
    status, _, body = call("GET", "/hooks/payments/stripe/events/evt_1")
    assert (status, body) == (200, {"params": {"provider": "stripe", "event": "evt_1"}})


def test_an_unknown_value_reaches_the_handler_which_decides(call: Call) -> None:
    status, _, body = call("POST", "/hooks/payments/paypal")
    assert (status, body["error"]["code"]) == (404, "unknown_provider")


def test_missing_empty_or_extra_segments_are_404(call: Call) -> None:
    for path in (
        "/hooks/payments",
        "/hooks/payments/",  # an empty parameter does not match
        "/hooks/payments//events/x",
        "/hooks/payments/wave/extra",
        "/hooks/payments/wave/events/x/more",
        "/hooks/elsewhere/wave",
    ):
        status, _, body = call("POST", path)
        assert (status, body["error"]["code"]) == (404, "not_found"), path


def test_a_trailing_slash_is_the_same_route_as_for_fixed_paths(call: Call) -> None:
    # As API Gateway routes /my/path/ like /my/path, and as /chat/ reaches /chat today.
    status, _, body = call("POST", "/hooks/payments/wave/")
    assert (status, body) == (200, {"params": {"provider": "wave"}})


def test_percent_encoded_segments_are_decoded_once(call: Call) -> None:
    status, _, body = call("GET", "/hooks/payments/w%61ve/events/%2541")
    assert (status, body["params"]) == (200, {"provider": "wave", "event": "%41"})
    status, _, body = call("GET", "/hooks/payments/a%20b/events/%C3%A9t%C3%A9")
    assert (status, body["params"]) == (200, {"provider": "a b", "event": "été"})


def test_no_slash_inside_a_parameter(call: Call) -> None:
    # Encoded or not, a "/" separates segments: never part of a value.
    for path in ("/hooks/payments/a%2Fb/events/x", "/hooks/payments/wave/events/a%2fb"):
        status, _, body = call("GET", path)
        assert (status, body["error"]["code"]) == (404, "not_found"), path


def test_a_segment_that_is_not_utf8_matches_nothing(call: Call) -> None:
    status, _, body = call("GET", "/hooks/payments/%FF/events/x")
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_a_fixed_segment_wins_over_a_parameter_for_its_methods(call: Call) -> None:
    status, _, body = call("GET", "/hooks/payments/refunds")
    assert (status, body) == (200, {"static": True, "params": {}})
    # POST is not a method of the fixed route: the parameter's route takes it.
    status, _, body = call("POST", "/hooks/payments/refunds")
    assert (status, body["error"]["code"]) == (404, "unknown_provider")


def test_a_known_path_with_the_wrong_method_is_405_with_allow(call: Call) -> None:
    status, headers, body = call("DELETE", "/hooks/payments/wave")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
    assert {k.lower(): v for k, v in headers.items()}["allow"] == "POST"
    status, headers, _ = call("PUT", "/hooks/payments/refunds")  # both routes fit the path
    assert (status, {k.lower(): v for k, v in headers.items()}["allow"]) == (405, "GET, POST")


def test_the_access_log_names_the_pattern_never_the_value(logs: io.StringIO) -> None:
    hooks(Request("POST", "/hooks/payments/secret-looking-value"))
    hooks(Request("GET", "/hooks/payments/wave/events/evt_42"))
    hooks(Request("GET", "/hooks/nowhere/evt_43"))
    routes = [json.loads(line)["route"] for line in logs.getvalue().splitlines()]
    assert routes == [
        "/hooks/payments/{provider}",
        "/hooks/payments/{provider}/events/{event}",
        "unmatched",
    ]
    assert "secret-looking-value" not in logs.getvalue() and "evt_4" not in logs.getvalue()


def test_the_routes_as_the_http_api_declares_them() -> None:
    assert hooks.routes == {
        "POST /hooks/payments/{provider}",
        "GET /hooks/payments/{provider}/events/{event}",
        "GET /hooks/payments/refunds",
    }


@pytest.mark.parametrize(
    "pattern", ["payments", "/{a}/{a}", "/x{a}", "/{a}x", "/{1}", "/a//b", "/{}", "/{a-b}"]
)
def test_a_malformed_pattern_is_refused_when_declared(pattern: str) -> None:
    with pytest.raises(ValueError, match="route"):
        HTTPFunction("bad", "/bad").route(pattern, "GET")
