"""AWS Lambda adapter: API Gateway HTTP API (payload format 2.0) to a neutral Request and back."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from shared.http import Handler, Request

LambdaHandler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def request_from_event(event: Mapping[str, Any]) -> Request:
    http = event.get("requestContext", {}).get("http", {})
    body = event.get("body") or ""
    # A text body is what API Gateway decoded; "surrogatepass" keeps a lone surrogate in it as
    # bytes for the JSON parser to refuse (a 400) rather than failing here, before any handler.
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(body)
    else:
        raw = body.encode("utf-8", "surrogatepass")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if event.get("cookies"):
        headers["cookie"] = "; ".join(event["cookies"])
    kwargs: dict[str, Any] = {}
    if request_id := event.get("requestContext", {}).get("requestId"):
        kwargs["request_id"] = request_id
    return Request(
        method=http.get("method", "GET").upper(),
        path=event.get("rawPath") or http.get("path") or "/",
        query=dict(parse_qsl(event.get("rawQueryString") or "", keep_blank_values=True)),
        headers=headers,
        body=raw,
        source_ip=http.get("sourceIp", ""),
        **kwargs,
    )


def lambda_adapter(handler: Handler) -> LambdaHandler:
    """Wrap a neutral handler as ``lambda_handler(event, context)``."""

    def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        response = handler(request_from_event(event))
        return {
            "statusCode": response.status,
            "headers": response.headers,
            "body": base64.b64encode(response.body_bytes()).decode(),
            "isBase64Encoded": True,
        }

    return lambda_handler
