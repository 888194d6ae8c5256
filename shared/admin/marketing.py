"""The console's campaigns and jobs: the same domain as ``python -m shared campaign|jobs``
(``shared.campaigns``, ``shared.jobs``), in the operator's shop only.

Nothing is sent in a request (a console call has ~29 s): a launch plans the run and hands its
batches to the worker, a job's "run now" hands its fire to the worker.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from shared.admin import audit
from shared.admin.auth import operator_of
from shared.admin.exceptions import ConflictError
from shared.admin.records import known
from shared.exceptions import AlreadyExistsError
from shared.http import HTTPFunction, Request, Response, json_response, parse_model

if TYPE_CHECKING:
    from shared.app import App
    from shared.campaigns.models import Campaign, Run
    from shared.jobs import Job

PREVIEW_SAMPLES = 5
REPORT_SENDS = 50  # the report's newest messages listed one by one


class _DefinitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    definition: dict[str, Any]


class _EnabledBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


def _app() -> App:
    from shared.app import get_app

    return get_app()


def register(api: HTTPFunction) -> None:
    @api.route("/campaigns", "GET")
    def campaigns(request: Request) -> Response:
        from shared.campaigns.definitions import list_campaigns

        shop = operator_of(request).shop
        app = _app()
        last = _last_runs(app, shop)
        listed = sorted(list_campaigns(app.store, shop), key=lambda c: c.created_at, reverse=True)
        return json_response(
            200, {"campaigns": [_campaign_summary(c, last.get(c.id)) for c in listed]}
        )

    @api.route("/campaigns", "POST")
    def create_campaign(request: Request) -> Response:
        from shared.campaigns import definitions

        operator = operator_of(request, write=True)
        description = parse_model(request, _DefinitionBody).definition
        app, now = _app(), time.time()
        shop = app.shops.get(operator.shop)
        campaign = definitions.build(shop, description, now)
        try:
            saved = definitions.save(app.store, shop, campaign, now, replace=False)
        except AlreadyExistsError as exc:
            raise ConflictError(f"{exc}: give another id") from None
        audit.record(
            app.store, shop.id, operator, "campaign.create", saved.id, {"recipe": saved.recipe}
        )
        return json_response(201, {"campaign": _campaign_json(saved, None)})

    @api.route("/campaigns/{id}", "GET")
    def campaign(request: Request) -> Response:
        from shared.campaigns.definitions import load_campaign

        shop = operator_of(request).shop
        app = _app()
        with known():
            found = load_campaign(app.store, shop, request.params["id"])
        last = _last_runs(app, shop, found.id).get(found.id)
        return json_response(200, {"campaign": _campaign_json(found, last)})

    @api.route("/campaigns/{id}/preview", "POST")
    def preview(request: Request) -> Response:
        from shared.campaigns.definitions import load_campaign
        from shared.campaigns.runner import preview

        # It only reads (nothing is sent or written), yet it is a POST: it runs the model.
        operator = operator_of(request, write=True)
        app = _app()
        shop = app.shops.get(operator.shop)
        with known():
            found = load_campaign(app.store, shop.id, request.params["id"])
        shown = preview(app, shop, found, time.time(), PREVIEW_SAMPLES)
        samples = [
            {
                "customer_id": recipient.customer_id,
                "name": recipient.name,
                "channel": recipient.channel,
                "lang": recipient.lang,
                "text": text,
            }
            for recipient, text in shown.messages
        ]
        return json_response(
            200,
            {
                "audience": shown.audience,
                "by_channel": shown.by_channel,
                "left_out": shown.left_out,
                "samples": samples,
            },
        )

    @api.route("/campaigns/{id}/launch", "POST")
    def launch(request: Request) -> Response:
        from shared.campaigns.definitions import load_campaign
        from shared.campaigns.runner import launch

        operator = operator_of(request, write=True)
        app = _app()
        shop = app.shops.get(operator.shop)
        with known():
            found = load_campaign(app.store, shop.id, request.params["id"])
        if not found.enabled:
            raise ConflictError(f"campaign {found.id!r} is disabled: enable it to launch it")
        run = launch(app, shop, found, time.time())
        if run is None:
            raise ConflictError(f"campaign {found.id!r} has a run not done yet: see its report")
        audit.record(
            app.store, shop.id, operator, "campaign.launch", found.id,
            {"run": run.id, "audience": run.audience},
        )  # fmt: skip
        return json_response(202, {"run": _run_json(run)})

    @api.route("/campaigns/{id}/report", "GET")
    def report(request: Request) -> Response:
        from shared.campaigns.definitions import load_campaign
        from shared.campaigns.report import report, status_of

        shop = operator_of(request).shop
        app, now = _app(), time.time()
        with known():
            found = load_campaign(app.store, shop, request.params["id"])
        done = report(app.store, shop, found.id, now)
        newest = sorted(done.sends, key=lambda s: s.at, reverse=True)[:REPORT_SENDS]
        sends = [
            {
                "customer_id": send.customer_id,
                "channel": send.channel,
                "status": status_of(send, now),
                "reason": send.reason,
                "at": send.at,
                "sent_at": send.sent_at,
            }
            for send in newest
        ]
        return json_response(
            200,
            {
                "campaign_id": found.id,
                "runs": [_run_json(r) for r in done.runs],
                "statuses": dict(done.statuses),
                "by_channel": dict(done.by_channel),
                "reasons": dict(done.reasons),
                "replies": done.replies,
                "orders": done.orders,
                "payments": done.payments,
                "revenue": {code: str(amount) for code, amount in done.revenue.items()},
                "sends": sends,
            },
        )

    @api.route("/campaigns/{id}/enabled", "POST")
    def campaign_enabled(request: Request) -> Response:
        from shared.campaigns.definitions import set_enabled

        operator = operator_of(request, write=True)
        enabled = parse_model(request, _EnabledBody).enabled
        app = _app()
        shop = app.shops.get(operator.shop)
        with known():
            switched = set_enabled(app.store, shop, request.params["id"], enabled, time.time())
        action = "campaign.enable" if enabled else "campaign.disable"
        audit.record(app.store, shop.id, operator, action, switched.id)
        last = _last_runs(app, shop.id, switched.id).get(switched.id)
        return json_response(200, {"campaign": _campaign_json(switched, last)})

    @api.route("/jobs", "GET")
    def jobs_list(request: Request) -> Response:
        from shared import jobs

        shop = operator_of(request).shop
        app, now = _app(), time.time()
        listed = jobs.list_jobs(app.store, shop)
        return json_response(200, {"jobs": [_job_json(job, now) for job in listed]})

    @api.route("/jobs", "POST")
    def create_job(request: Request) -> Response:
        from shared import jobs

        operator = operator_of(request, write=True)
        description = parse_model(request, _DefinitionBody).definition
        app, now = _app(), time.time()
        shop = app.shops.get(operator.shop)
        job = jobs.build(shop, description, now)
        if app.store.get(shop.id, jobs.JOBS, job.id) is not None:
            raise ConflictError(f"job {job.id!r} exists: give another id")
        saved = jobs.save_job(app.store, job, now)
        audit.record(app.store, shop.id, operator, "job.create", saved.id)
        return json_response(201, {"job": _job_json(saved, now)})

    @api.route("/jobs/{id}/enabled", "POST")
    def job_enabled(request: Request) -> Response:
        from shared import jobs

        operator = operator_of(request, write=True)
        enabled = parse_model(request, _EnabledBody).enabled
        app, now = _app(), time.time()
        job_id = request.params["id"]
        with known():
            switched = jobs.set_enabled(app.store, operator.shop, job_id, enabled, now)
        action = "job.enable" if enabled else "job.disable"
        audit.record(app.store, operator.shop, operator, action, switched.id)
        return json_response(200, {"job": _job_json(switched, now)})

    @api.route("/jobs/{id}/run", "POST")
    def job_run(request: Request) -> Response:
        from shared import jobs

        operator = operator_of(request, write=True)
        app, now = _app(), time.time()
        with known():
            job = jobs.load_job(app.store, operator.shop, request.params["id"])
        if not job.enabled:
            raise ConflictError(f"job {job.id!r} is disabled: enable it to run it")
        run_id = jobs.queue_run(app, operator.shop, job.id, now)
        audit.record(app.store, operator.shop, operator, "job.run", job.id, {"run": run_id})
        return json_response(202, {"job": _job_json(job, now), "run": run_id})


def _last_runs(app: App, shop: str, campaign_id: str | None = None) -> dict[str, Run]:
    """Each campaign's latest run (of ``campaign_id`` only, when given)."""
    from shared.campaigns.models import Run
    from shared.campaigns.runner import RUNS

    where = {"campaign_id": campaign_id} if campaign_id is not None else None
    latest: dict[str, Run] = {}
    for doc in app.store.scan(shop, RUNS, where=where):
        run = Run.from_doc(doc)
        if run.campaign_id not in latest or run.started_at > latest[run.campaign_id].started_at:
            latest[run.campaign_id] = run
    return latest


def _run_json(run: Run) -> dict[str, Any]:
    return run.model_dump(mode="json", exclude={"created_at", "updated_at"})


def _campaign_summary(campaign: Campaign, last: Run | None) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "recipe": campaign.recipe,
        "enabled": campaign.enabled,
        "schedule": campaign.schedule.model_dump(mode="json"),
        "last_run": _run_json(last) if last is not None else None,
    }


def _campaign_json(campaign: Campaign, last: Run | None) -> dict[str, Any]:
    """The whole definition (segment, message, repeat...) and its latest run."""
    return {**campaign.model_dump(mode="json"), **_campaign_summary(campaign, last)}


def _job_json(job: Job, now: float) -> dict[str, Any]:
    from shared.schedules import next_fire

    following = next_fire(job.schedule, now) if job.enabled else None
    return {**job.model_dump(mode="json", exclude={"shop"}), "next_run_at": following}
