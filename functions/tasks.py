"""Scheduled tasks: ``POST /tasks/{name}`` (``tick`` fires the due schedules).

The caller sends ``X-Tasks-Secret: TASKS_SECRET`` (missing or wrong, and always while the
setting is unset: 401; an unknown task: 404, mapped in ``shared.http``); the answer is the
task's JSON summary. On AWS, EventBridge Scheduler invokes the Lambda directly with
``{"task": "tick"}``: no HTTP, and only the scheduler's role may invoke it, so no secret either.
Cloud Scheduler calls the function's URL with the secret header (``infra/gcp/deploy.py``).

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``tasks`` (functions-framework).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
import time
from collections.abc import Mapping
from typing import Any

from shared.app import get_app
from shared.http import HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter
from shared.log import log_event
from shared.tasks import TASKS_HEADER, check_tasks_secret, run_task

handler = HTTPFunction("tasks", "/tasks")


@handler.route("/{name}", "POST")
def post_task(request: Request) -> Response:
    app = get_app()
    check_tasks_secret(app.settings, request.header(TASKS_HEADER))
    name = request.params["name"]
    return json_response(200, {"task": name, "summary": run_task(app, name, time.time())})


_http_handler = lambda_adapter(handler)


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """An API Gateway request, or EventBridge Scheduler's ``{"task": name}``."""
    if "requestContext" in event or "task" not in event:
        return _http_handler(event, context)
    name = str(event["task"])
    log_event("task_invoked", task=name, trigger="scheduler")
    return {"task": name, "summary": run_task(get_app(), name, time.time())}


tasks = gcf_adapter(handler)
