"""Google Cloud Functions adapter (functions-framework, Flask-style targets).

Flask is not imported here: the framework hands us its request and accepts a
``(body, status, headers)`` tuple back, so importing a function module stays light.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from shared.http import Handler, Request

GCFHandler = Callable[[Any], tuple[Any, int, dict[str, str]]]


def request_from_flask(flask_request: Any) -> Request:
    headers = {k.lower(): v for k, v in flask_request.headers.items()}
    source_ip = flask_request.remote_addr or ""
    # Google's front end appends the address it saw to X-Forwarded-For; earlier hops are
    # whatever the client sent, so only the last one is trusted.
    if forwarded := headers.get("x-forwarded-for"):
        source_ip = forwarded.split(",")[-1].strip()
    kwargs: dict[str, Any] = {}
    trace = headers.get("x-cloud-trace-context", "").split("/")[0]
    if re.fullmatch(r"[0-9a-f]{32}", trace):  # a client may send anything: keep only a trace id
        kwargs["request_id"] = trace
    return Request(
        method=flask_request.method.upper(),
        path=_path_as_sent(flask_request),
        query={k: v for k, v in flask_request.args.items()},
        headers=headers,
        body=flask_request.get_data(cache=False),
        source_ip=source_ip,
        **kwargs,
    )


def _path_as_sent(flask_request: Any) -> str:
    """The path percent-encoded, as the other adapters pass it, so that a route's parameters
    are decoded once on every platform: WSGI's path is decoded already (and ``%2F`` in it is a
    ``/``), the server's raw request line (gunicorn, werkzeug) is not."""
    raw_path = urlsplit(flask_request.environ.get("RAW_URI", "")).path
    return raw_path or quote(flask_request.path, safe="/!$&'()*+,;=:@")


def gcf_adapter(handler: Handler) -> GCFHandler:
    """Wrap a neutral handler as a functions-framework HTTP target."""

    def target(flask_request: Any) -> tuple[Any, int, dict[str, str]]:
        response = handler(request_from_flask(flask_request))
        body = response.body if isinstance(response.body, bytes) else iter(response.body)
        return body, response.status, response.headers

    return target
