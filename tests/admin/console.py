"""Calls to the console's API as a signed-in operator, for the area tests."""

from __future__ import annotations

import json
from typing import Any

from shared.admin import audit, auth
from shared.app import App
from shared.shops import create_shop, new_shop
from tests.admin.conftest import signed_in
from tests.fixtures.app import SHOP as SHOP_DOC
from tests.fixtures.app import Client, Result

API = "/admin/api"
SHOP = str(SHOP_DOC["id"])
OTHER = "other"  # a second shop, whose operator must see nothing of SHOP's
EMAIL = "awa@maison-teranga.example"


def add_other_shop(app: App) -> None:
    create_shop(app.store, new_shop(OTHER, {"name": "Autre boutique"}))


def call(
    client: Client,
    app: App,
    method: str,
    path: str,
    body: Any = None,
    *,
    shop: str = SHOP,
    csrf: bool = True,
    raw: bytes | None = None,
    content_type: str = "application/json",
    query: dict[str, str] | None = None,
) -> Result:
    """``method path`` by an operator of ``shop``: ``body`` as JSON, or ``raw`` bytes."""
    headers = signed_in(app, shop, EMAIL)
    if not csrf:
        del headers[auth.CSRF_HEADER.lower()]
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    if data:
        headers["content-type"] = content_type
    return client.request(method, API + path, headers=headers, body=data, query=query)


def audited(app: App, shop: str = SHOP) -> list[tuple[str, str, dict[str, Any]]]:
    """The shop's audit entries, oldest first: (action, target, details)."""
    entries, _ = audit.entries(app.store, shop)
    return [(e["action"], e["target"], e["details"]) for e in reversed(entries)]


def error_of(result: Result) -> tuple[int, str, str]:
    error = result.json()["error"]
    return result.status, error["code"], error["message"]
