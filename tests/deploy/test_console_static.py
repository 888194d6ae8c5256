"""The console's files served by the admin function on Google Cloud (shared/http/static.py),
through functions-framework as deployed: one origin with its API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.http import HTTPFunction, Request, Response, json_response
from shared.http.static import with_static_files
from tests.deploy.conftest import ROOT


@pytest.fixture
def console(tmp_path: Path) -> Path:
    folder = tmp_path / "admin"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>Comptoir console</title>")
    (folder / "console.89abcdef01.js").write_text("/* console */")
    (tmp_path / "secret.txt").write_text("outside the folder")
    return folder


def _api() -> HTTPFunction:
    api = HTTPFunction("admin", "/admin/api")

    @api.route("/me", "GET")
    def me(request: Request) -> Response:
        return json_response(200, {"email": "op@shop.example"})

    return api


def test_files_index_redirect_and_the_api_behind(console: Path) -> None:
    serve = with_static_files(_api(), console, "/admin/")

    index = serve(Request("GET", "/admin/"))
    assert index.status == 200 and b"Comptoir console" in index.body_bytes()
    assert index.headers["Content-Type"] == "text/html; charset=utf-8"
    assert index.headers["Cache-Control"] == "public, max-age=300"
    assert index.headers["X-Frame-Options"] == "DENY"
    assert serve(Request("GET", "/admin/inbox/42")).body_bytes() == index.body_bytes()

    script = serve(Request("GET", "/admin/console.89abcdef01.js"))
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    head = serve(Request("HEAD", "/admin/console.89abcdef01.js"))
    assert head.status == 200 and head.body_bytes() == b""

    redirect = serve(Request("GET", "/admin", query={"link": "abc"}))
    assert (redirect.status, redirect.headers["Location"]) == (301, "/admin/?link=abc")

    # The API's paths and methods are the function's, not files.
    assert serve(Request("GET", "/admin/api/me")).status == 200
    assert serve(Request("POST", "/admin/")).status == 404  # no such route
    assert serve(Request("GET", "/admin/missing.js")).status == 404


def test_nothing_outside_the_folder_is_served(console: Path) -> None:
    serve = with_static_files(_api(), console, "/admin/")
    for path in ("/admin/%2e%2e/secret.txt", "/admin/..%2fsecret.txt", "/admin/../secret.txt"):
        answer = serve(Request("GET", path))
        assert answer.status == 404 and b"outside" not in answer.body_bytes(), path


def test_a_console_not_built_answers_404(tmp_path: Path) -> None:
    serve = with_static_files(_api(), tmp_path / "none", "/admin/")
    assert serve(Request("GET", "/admin/")).status == 404
    assert serve(Request("GET", "/admin/api/me")).status == 200


def test_the_admin_target_serves_the_console_under_functions_framework(
    console: Path, tmp_path: Path
) -> None:
    """functions/admin.py's Google Cloud target, from a source folder laid out as
    infra/gcp/deploy.py builds it (web/dist/admin beside functions/ and shared/)."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "functions", source / "functions",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(ROOT / "shared", source / "shared",
                    ignore=shutil.ignore_patterns("__pycache__", "demo"))  # fmt: skip
    shutil.copytree(console, source / "web" / "dist" / "admin")
    (source / "main.py").write_text("from functions.admin import admin\n")
    script = """
from functions_framework import create_app
client = create_app("admin", "main.py").test_client()
for path in ("/admin/", "/admin/console.89abcdef01.js", "/admin", "/admin/api/me"):
    print(path, client.get(path).status_code)
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ADMIN_SESSION_SECRET")}
    env.update({"STORE_URL": f"sqlite:///{tmp_path / 'store.db'}", "QUEUE_URL": "inprocess://"})
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=source, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    statuses = dict(line.split() for line in result.stdout.splitlines())
    # /admin/api/me: the API's own answer (no session), not a file's 404.
    assert statuses == {"/admin/": "200", "/admin/console.89abcdef01.js": "200",
                        "/admin": "301", "/admin/api/me": "401"}  # fmt: skip
