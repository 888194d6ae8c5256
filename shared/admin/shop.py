"""The console's shop: its settings (persona, offer, model, payment provider...) with the
choices they take, the catalogue and FAQ upload (the CLI's importer, with its report) and the
health of its backends and providers."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, create_model

from shared.admin import audit
from shared.admin.auth import operator_of
from shared.http import HTTPError, HTTPFunction, Request, Response, json_response, parse_model
from shared.models import Shop

if TYPE_CHECKING:
    from shared.app import App
    from shared.catalog.importer import ImportReport

# The settings the console edits; the rest (channels, plans, quotas...) stay with the CLI.
EDITABLE = (
    "name",
    "persona",
    "offer",
    "system_prompt_addition",
    "llm_provider",
    "llm_model",
    "whatsapp_template",
    "business_hours",
    "timezone",
    "payment_provider",
    "languages",
    "contact",
    "url",
    "web_search",
    "voice_notes",
    "voice",
)
# A body of any of them; a key not editable is a 400. The values are checked by the Shop model
# itself (``shops.apply_settings``), with the checks a setting's change takes.
_FIELDS: dict[str, Any] = {name: (Any, None) for name in EDITABLE}
_ShopChanges = create_model("ShopChanges", __config__=ConfigDict(extra="forbid"), **_FIELDS)
# What an upload's Content-Type says it is: the name the importer's messages give the file.
_FILE_NAMES = {"application/json": "{kind}.json", "text/csv": "{kind}.csv"}


def _app() -> App:
    from shared.app import get_app

    return get_app()


def _upload_limit() -> int:
    return _app().settings.admin_upload_max_bytes


def register(api: HTTPFunction) -> None:
    @api.route("/shop", "GET")
    def shop_settings(request: Request) -> Response:
        operator = operator_of(request)
        return json_response(200, {"shop": _shop_json(_app().shops.get(operator.shop))})

    @api.route("/shop", "POST")
    def change_settings(request: Request) -> Response:
        from shared.shops import update_shop

        operator = operator_of(request, write=True)
        changes = parse_model(request, _ShopChanges).model_dump(exclude_unset=True)
        app = _app()
        # A conditional write of the keys sent only: a change of another field meanwhile stays.
        changed = update_shop(app.store, operator.shop, changes)
        app.shops.invalidate(operator.shop)  # this instance's next turn reads the new settings
        audit.record(
            app.store, operator.shop, operator, "shop.settings", operator.shop,
            {"fields": sorted(changes)},
        )  # fmt: skip
        return json_response(200, {"shop": _shop_json(changed)})

    @api.route("/catalog", "POST", max_body=_upload_limit)
    def catalog_upload(request: Request) -> Response:
        return _upload(request, "catalog")

    @api.route("/faq", "POST", max_body=_upload_limit)
    def faq_upload(request: Request) -> Response:
        return _upload(request, "faq")

    @api.route("/health", "GET")
    def health(request: Request) -> Response:
        from shared.health import shop_health

        operator = operator_of(request)
        app = _app()
        return json_response(200, shop_health(app, app.shops.get(operator.shop)))


def _shop_json(shop: Shop) -> dict[str, Any]:
    """The editable settings and the choices the closed ones take."""
    from shared.llm import PROVIDERS as LLM_PROVIDERS
    from shared.payments import PROVIDERS as PAYMENT_PROVIDERS
    from shared.prompts import personas

    return {
        **shop.model_dump(mode="json", include=set(EDITABLE)),
        "personas": personas(),
        "llm_providers": list(LLM_PROVIDERS),
        "payment_providers": list(PAYMENT_PROVIDERS),
    }


def _upload(request: Request, kind: str) -> Response:
    """Import the body, the same file the CLI takes, and answer the importer's report. The
    importer reads the whole file before it writes: a file it cannot read changes nothing."""
    from shared.catalog.importer import import_catalog, import_faq

    operator = operator_of(request, write=True)
    content_type = request.header("content-type").split(";")[0].strip().lower()
    file_name = _FILE_NAMES.get(content_type)
    if file_name is None:
        raise HTTPError(415, "unsupported_media_type", "send the file as text/csv or JSON")
    prune = request.query.get("prune") == "1"  # a full export: what it lacks is removed
    app = _app()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / file_name.format(kind=kind)
        path.write_bytes(request.body)
        importer = import_catalog if kind == "catalog" else import_faq
        report = importer(
            app.store, operator.shop, path, prune=prune, snapshots=app.catalog_snapshots
        )
    app.shops.invalidate(operator.shop)  # its catalogue version moved
    audit.record(
        app.store, operator.shop, operator, "catalog.import", report.collection,
        {
            "created": report.created, "updated": report.updated, "removed": report.removed,
            "rejected": report.rejected,
        },
    )  # fmt: skip
    return json_response(200, {"report": _report_json(report)})


def _report_json(report: ImportReport) -> dict[str, Any]:
    return {**dataclasses.asdict(report), "rejected": report.rejected, "summary": report.summary()}
