"""The console's campaigns and jobs (``shared/admin/marketing.py``) on the loopback Graph API:
created from the CLI's JSON, previewed, launched through the queue (never sent in the request),
reported, switched off and on; every write audited; another shop's ids are 404."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared import jobs, marketing, schedules
from shared.admin import audit
from shared.app import App
from shared.campaigns import definitions
from tests.admin.conftest import ADMIN_SECRET, signed_in
from tests.campaigns.conftest import SHOP, order, whatsapp_customer
from tests.channels.conftest import RecordingQueue, channel_settings, sleeps  # noqa: F401
from tests.fixtures.app import SHOP as SHOP_DOC
from tests.fixtures.app import Client, FunctionsFrameworkClient, LambdaClient, Result
from tests.fixtures.graph_server import GraphServer
from tests.fixtures.telegram_server import TelegramServer

API = "/admin/api"
HOURS = 3600.0
RELANCE = {
    "id": "relance",
    "name": "Relance des commandes",
    "recipe": "abandoned_order",
    "schedule": {"quiet_hours": None},  # any time: the tests run at any hour
}
OTHER = "other"


@pytest.fixture
def app(
    make_app: Callable[..., App],
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    sleeps: list[float],  # noqa: F811
) -> App:
    """The console on, both channels on the loopback servers, the App's own in-process queue."""
    return make_app(
        ADMIN_SESSION_SECRET=ADMIN_SECRET, **channel_settings(graph_server, telegram_server)
    )


@pytest.fixture(params=["lambda", "gcf"])
def client(request: pytest.FixtureRequest, app: App) -> Client:
    return LambdaClient() if request.param == "lambda" else FunctionsFrameworkClient()


@pytest.fixture
def abandoned(app: App) -> None:
    """Three orders waiting for payment for 3 hours on WhatsApp; one customer opted out."""
    for number, name in enumerate(("Awa Ndiaye", "Fatou Sow", "Khady Diallo")):
        customer, chat = whatsapp_customer(app, f"22177000050{number}", name)
        order(app, customer, chat, at=time.time() - 3 * HOURS)
        if name == "Khady Diallo":
            marketing.set_marketing(app.store, SHOP, customer.id, True, time.time())


def call(
    client: Client, app: App, method: str, path: str, body: Any = None, shop: str = SHOP
) -> Result:
    headers = signed_in(app, shop)
    if body is None:
        return client.request(method, API + path, headers=headers)
    headers["content-type"] = "application/json"
    return client.request(method, API + path, headers=headers, body=json.dumps(body).encode())


def audited(app: App, shop: str = SHOP) -> list[tuple[str, str]]:
    entries, _ = audit.entries(app.store, shop)
    return [(entry["action"], entry["target"]) for entry in reversed(entries)]


def drain(app: App) -> None:
    assert app.queue.drain(timeout=20)  # type: ignore[attr-defined]


# --- campaigns ---------------------------------------------------------------------------------


def test_a_campaign_created_from_its_json_is_listed_and_shown(app: App, client: Client) -> None:
    created = call(client, app, "POST", "/campaigns", {"definition": RELANCE})

    assert created.status == 201, created.body
    campaign = created.json()["campaign"]
    assert campaign["id"] == "relance" and campaign["recipe"] == "abandoned_order"
    assert campaign["segment"]["order_status"] == ["confirmed", "awaiting_payment"]  # the recipe's
    listed = call(client, app, "GET", "/campaigns").json()["campaigns"]
    assert [(c["id"], c["name"], c["enabled"], c["last_run"]) for c in listed] == [
        ("relance", "Relance des commandes", True, None)
    ]
    shown = call(client, app, "GET", "/campaigns/relance").json()["campaign"]
    assert shown["repeat"] == "order" and shown["schedule"]["quiet_hours"] is None
    assert audited(app) == [("campaign.create", "relance")]


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({**RELANCE, "recipe": "soldes"}, "unknown recipe 'soldes'"),
        ({**RELANCE, "schedule": {"cron": "every monday"}}, "expected 5 fields"),
        ({"id": "vide", "message": {}}, "give a brief, a WhatsApp template, or both"),
        ({**RELANCE, "id": "Pas un id"}, "id:"),
    ],
)
def test_a_bad_description_is_400_naming_the_problem_and_nothing_is_saved(
    app: App, client: Client, definition: dict[str, Any], problem: str
) -> None:
    result = call(client, app, "POST", "/campaigns", {"definition": definition})

    assert result.status == 400, result.body
    assert result.json()["error"]["code"] == "invalid_input"
    assert problem in result.json()["error"]["message"]
    assert definitions.list_campaigns(app.store, SHOP) == []
    assert audited(app) == []


def test_a_campaign_id_taken_is_409_and_the_first_one_is_kept(app: App, client: Client) -> None:
    assert call(client, app, "POST", "/campaigns", {"definition": RELANCE}).status == 201

    again = call(client, app, "POST", "/campaigns", {"definition": {**RELANCE, "name": "Autre"}})

    assert again.status == 409 and "'relance' exists" in again.json()["error"]["message"]
    assert definitions.load_campaign(app.store, SHOP, "relance").name == RELANCE["name"]


def test_a_body_with_an_unknown_key_is_400(app: App, client: Client) -> None:
    result = call(client, app, "POST", "/campaigns", {"definition": RELANCE, "shop": OTHER})

    assert result.status == 400
    assert "shop" in result.json()["error"]["message"]
    assert definitions.list_campaigns(app.store, SHOP) == []


@pytest.mark.usefixtures("abandoned")
def test_preview_counts_the_audience_and_sends_nothing(
    app: App, client: Client, graph_server: GraphServer
) -> None:
    assert call(client, app, "POST", "/campaigns", {"definition": RELANCE}).status == 201

    shown = call(client, app, "POST", "/campaigns/relance/preview")

    assert shown.status == 200, shown.body
    preview = shown.json()
    assert preview["audience"] == 2 and preview["by_channel"] == {"whatsapp": 2}
    assert preview["left_out"] == {"opted_out": 1}
    texts = sorted(sample["text"] for sample in preview["samples"])
    assert texts[0].startswith("Bonjour Awa, votre commande Boubou brodé")
    assert texts[1].startswith("Bonjour Fatou, votre commande Boubou brodé")
    assert graph_server.sent == []


@pytest.mark.usefixtures("abandoned")
def test_launch_sends_through_the_queue_once_and_the_report_counts_it(
    app: App, client: Client, graph_server: GraphServer
) -> None:
    assert call(client, app, "POST", "/campaigns", {"definition": RELANCE}).status == 201

    launched = call(client, app, "POST", "/campaigns/relance/launch")
    assert launched.status == 202, launched.body
    run = launched.json()["run"]
    assert run["id"].startswith("relance~") and run["audience"] == 2
    drain(app)
    # Launched again once done: every order had its reminder, nobody gets a second one.
    again = call(client, app, "POST", "/campaigns/relance/launch")
    assert again.status == 202, again.body
    assert again.json()["run"]["audience"] == 0
    assert again.json()["run"]["left_out"] == {"opted_out": 1, "reached_before": 2}
    drain(app)

    assert sorted(m["to"] for m in graph_server.sent) == ["221770000500", "221770000501"]
    report = call(client, app, "GET", "/campaigns/relance/report").json()
    assert report["statuses"] == {"sent": 2}
    assert [r["status"] for r in report["runs"]] == ["done", "done"]
    assert [s["status"] for s in report["sends"]] == ["sent", "sent"]
    listed = call(client, app, "GET", "/campaigns").json()["campaigns"]
    assert listed[0]["last_run"]["id"] == again.json()["run"]["id"]
    assert audited(app).count(("campaign.launch", "relance")) == 2


@pytest.mark.usefixtures("abandoned")
def test_a_second_launch_while_the_run_is_not_done_is_409(
    app: App, client: Client, graph_server: GraphServer
) -> None:
    app.queue = RecordingQueue()  # holds the batches: the run stays unfinished
    assert call(client, app, "POST", "/campaigns", {"definition": RELANCE}).status == 201

    first = call(client, app, "POST", "/campaigns/relance/launch")
    second = call(client, app, "POST", "/campaigns/relance/launch")

    assert first.status == 202, first.body
    assert second.status == 409 and second.json()["error"]["code"] == "conflict"
    assert "not done" in second.json()["error"]["message"]
    assert app.queue.kinds() == ["campaign_batch"]
    assert graph_server.sent == []  # nothing went in the request
    app.queue.run(app)
    assert len(graph_server.sent) == 2
    report = call(client, app, "GET", "/campaigns/relance/report").json()
    assert [r["status"] for r in report["runs"]] == ["done"]


def test_disable_and_enable_a_scheduled_campaign(app: App, client: Client) -> None:
    weekly = {**RELANCE, "schedule": {"cron": "0 10 * * mon"}}
    assert call(client, app, "POST", "/campaigns", {"definition": weekly}).status == 201
    entry = f"{SHOP}~campaign~relance"
    assert app.store.get(schedules.PLATFORM, schedules.ENTRIES, entry) is not None

    off = call(client, app, "POST", "/campaigns/relance/enabled", {"enabled": False})
    assert off.status == 200 and off.json()["campaign"]["enabled"] is False
    assert app.store.get(schedules.PLATFORM, schedules.ENTRIES, entry) is None
    refused = call(client, app, "POST", "/campaigns/relance/launch")
    assert refused.status == 409 and "disabled" in refused.json()["error"]["message"]

    on = call(client, app, "POST", "/campaigns/relance/enabled", {"enabled": True})
    assert on.status == 200 and on.json()["campaign"]["enabled"] is True
    assert app.store.get(schedules.PLATFORM, schedules.ENTRIES, entry) is not None
    assert audited(app)[1:] == [("campaign.disable", "relance"), ("campaign.enable", "relance")]


# --- jobs --------------------------------------------------------------------------------------


def test_a_job_is_created_listed_run_now_through_the_queue_and_disabled(
    app: App, client: Client, graph_server: GraphServer
) -> None:
    customer, _ = whatsapp_customer(app, "221770000510", "Awa Ndiaye")
    definition = {
        "schedule": {"cron": "0 9 * * mon"},
        "customer_id": customer.id,
        "text": "Bonne semaine de la part de la boutique !",
    }
    created = call(client, app, "POST", "/jobs", {"definition": definition})
    assert created.status == 201, created.body
    job = created.json()["job"]
    assert job["created_by"] == "operator" and job["schedule"]["timezone"] == "Africa/Dakar"
    listed = call(client, app, "GET", "/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]] and listed[0]["next_run_at"] > time.time()

    ran = call(client, app, "POST", f"/jobs/{job['id']}/run")
    assert ran.status == 202, ran.body
    drain(app)
    run = app.store.get(SHOP, jobs.RUNS, ran.json()["run"])
    assert run is not None and run.data["statuses"] == {"sent": 1}
    [message] = graph_server.sent
    assert message["to"] == "221770000510"
    assert message["text"]["body"].startswith("Bonne semaine de la part de la boutique !")

    off = call(client, app, "POST", f"/jobs/{job['id']}/enabled", {"enabled": False})
    assert off.status == 200 and off.json()["job"]["enabled"] is False
    assert off.json()["job"]["next_run_at"] is None
    entry = f"{SHOP}~job~{job['id']}"
    assert app.store.get(schedules.PLATFORM, schedules.ENTRIES, entry) is None
    assert call(client, app, "POST", f"/jobs/{job['id']}/run").status == 409
    on = call(client, app, "POST", f"/jobs/{job['id']}/enabled", {"enabled": True})
    assert on.status == 200 and on.json()["job"]["enabled"] is True
    assert app.store.get(schedules.PLATFORM, schedules.ENTRIES, entry) is not None
    assert [action for action, _ in audited(app)] == [
        "job.create",
        "job.run",
        "job.disable",
        "job.enable",
    ]
    taken = call(client, app, "POST", "/jobs", {"definition": {**definition, "id": job["id"]}})
    assert taken.status == 409 and "exists" in taken.json()["error"]["message"]


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"schedule": {"cron": "0 9 * * mon"}, "text": "Bonjour"}, "give one target"),
        ({"schedule": {"at": "demain"}, "customer_id": "c1", "text": "Bonjour"}, "schedule.at"),
        ({"schedule": {}, "customer_id": "c1", "text": "Bonjour"}, "schedule"),
    ],
)
def test_a_bad_job_is_400_and_nothing_is_saved(
    app: App, client: Client, definition: dict[str, Any], problem: str
) -> None:
    result = call(client, app, "POST", "/jobs", {"definition": definition})

    assert result.status == 400, result.body
    assert problem in result.json()["error"]["message"]
    assert call(client, app, "GET", "/jobs").json()["jobs"] == []


# --- who may do what ---------------------------------------------------------------------------


def test_another_shops_campaigns_and_jobs_are_404(app: App, client: Client) -> None:
    app.store.put(OTHER, "shops", OTHER, {**SHOP_DOC, "id": OTHER, "name": "Autre boutique"})
    other = app.shops.get(OTHER)
    now = time.time()
    definitions.save(app.store, other, definitions.build(other, RELANCE, now), now, replace=False)
    weekly = {"schedule": {"cron": "0 9 * * mon"}, "customer_id": "c1", "text": "Bonjour"}
    job = jobs.save_job(app.store, jobs.build(other, weekly, now), now)

    for method, path, body in [
        ("GET", "/campaigns/relance", None),
        ("POST", "/campaigns/relance/preview", None),
        ("POST", "/campaigns/relance/launch", None),
        ("GET", "/campaigns/relance/report", None),
        ("POST", "/campaigns/relance/enabled", {"enabled": False}),
        ("POST", f"/jobs/{job.id}/enabled", {"enabled": False}),
        ("POST", f"/jobs/{job.id}/run", None),
        ("POST", "/jobs/not%20an%20id/run", None),
    ]:
        result = call(client, app, method, path, body)
        assert result.status == 404, (path, result.body)
        assert result.json()["error"]["code"] == "not_found"

    assert call(client, app, "GET", "/campaigns").json()["campaigns"] == []
    assert call(client, app, "GET", "/jobs").json()["jobs"] == []
    assert definitions.load_campaign(app.store, OTHER, "relance").enabled  # untouched
    assert jobs.load_job(app.store, OTHER, job.id).enabled
    assert audited(app) == [] and audited(app, OTHER) == []
    # Its own operator sees them.
    mine = call(client, app, "GET", "/campaigns", shop=OTHER).json()["campaigns"]
    assert [c["id"] for c in mine] == ["relance"]


def test_without_a_session_401_without_the_csrf_token_403(app: App, client: Client) -> None:
    assert client.request("GET", API + "/campaigns").status == 401
    headers = {**signed_in(app, SHOP), "content-type": "application/json"}
    del headers["x-csrf-token"]
    body = json.dumps({"definition": RELANCE}).encode()
    result = client.request("POST", API + "/campaigns", headers=headers, body=body)
    assert result.status == 403
    assert definitions.list_campaigns(app.store, SHOP) == []
