"""Static files in front of an HTTP function: the operator console's, on Google Cloud.

There the admin function serves the console's files itself, under ``/admin/``, next to its API
(``/admin/api``): one origin for both, which the session cookie (SameSite=Strict) and the CSRF
check need, with no load balancer or CDN to set up. On AWS, CloudFront serves them from the
widget bucket and routes ``/admin/api/*`` to the HTTP API (serverless.yml), so the AWS target
does not use this.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlencode

from shared.blob.publish import IMMUTABLE, SHORT_LIVED, content_type, is_content_hashed
from shared.http import Handler, HTTPFunction, Request, Response, json_response

INDEX = "index.html"
# The console is never framed (clickjacking) and never sniffed; links leave no path behind.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def with_static_files(handler: HTTPFunction, folder: Path, mount: str) -> Handler:
    """``handler``, with GET and HEAD under ``mount`` (``/admin/``) answered from ``folder``:
    ``/admin`` redirects to ``/admin/`` (relative links resolve under it), a path whose last
    segment has no extension is the index (the console's own pages), the handler's own paths
    (its mount, ``/admin/api``) and every other method go to the handler. A folder that does
    not exist (the console not built) answers 404 for its files."""
    root = folder.resolve()
    base = "/" + mount.strip("/")
    prefix = base + "/"

    def serve(request: Request) -> Response:
        path = request.path
        is_own = path == handler.mount or path.startswith(handler.mount + "/")
        if (
            request.method not in ("GET", "HEAD")
            or is_own
            or not (path == base or path.startswith(prefix))
        ):
            return handler(request)
        if path == base:
            query = f"?{urlencode(dict(request.query))}" if request.query else ""
            return Response(301, b"", {"Location": prefix + query, **SECURITY_HEADERS})
        name = unquote(path[len(prefix) :])
        if "." not in name.rsplit("/", 1)[-1]:
            name = INDEX
        file = (root / name).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            return json_response(404, {"error": {"code": "not_found", "message": "no such file"}})
        headers = {
            "Content-Type": content_type(name),
            "Cache-Control": IMMUTABLE if is_content_hashed(name) else SHORT_LIVED,
            **SECURITY_HEADERS,
        }
        return Response(200, b"" if request.method == "HEAD" else file.read_bytes(), headers)

    return serve
