"""The console's orders: the shop's orders newest first, one order with the statuses it may move
to, and moving it (``shared.orders``: the same pipeline as ``python -m shared order``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from shared.admin import audit
from shared.admin.auth import operator_of
from shared.admin.exceptions import InvalidMoveError
from shared.admin.records import PAGE_SIZE, known, known_cursor
from shared.exceptions import InvalidInputError
from shared.http import HTTPFunction, Request, Response, json_response, parse_model

if TYPE_CHECKING:
    from shared.models import OrderStatus


class _StatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str
    note: str = Field(default="", max_length=500)  # why, kept in the audit log


def register(api: HTTPFunction) -> None:
    @api.route("/orders", "GET")
    def orders_list(request: Request) -> Response:
        from shared.app import get_app
        from shared.crm import LEADS
        from shared.models import Lead
        from shared.orders import order_json, parse_status

        shop = operator_of(request).shop
        wanted = request.query.get("status", "")
        where = None
        if wanted:
            try:
                where = {"status": parse_status(wanted)}
            except InvalidInputError as exc:
                raise InvalidInputError(f"status: {exc}") from None
        with known_cursor():
            # Order ids sort by creation time: by id, descending, is newest first.
            page = get_app().store.query(
                shop, LEADS, where=where, descending=True, limit=PAGE_SIZE,
                cursor=request.query.get("cursor") or None,
            )  # fmt: skip
        listed = [order_json(Lead.from_doc(doc)) for doc in page.items]
        return json_response(200, {"orders": listed, "cursor": page.cursor})

    @api.route("/orders/{id}", "GET")
    def order(request: Request) -> Response:
        from shared.app import get_app
        from shared.orders import get_order, order_json

        shop = operator_of(request).shop
        with known():
            found = get_order(get_app().store, shop, request.params["id"])
        return json_response(200, {"order": order_json(found), "moves": _moves(found.status)})

    @api.route("/orders/{id}/status", "POST")
    def order_status(request: Request) -> Response:
        from shared.app import get_app
        from shared.orders import InvalidTransitionError, order_json, parse_status, set_status

        operator = operator_of(request, write=True)
        body = parse_model(request, _StatusBody)
        try:
            status = parse_status(body.status)
        except InvalidInputError as exc:
            raise InvalidInputError(f"status: {exc}") from None
        store = get_app().store
        with known():
            try:
                moved = set_status(
                    store, operator.shop, request.params["id"], status,
                    f"operator:{operator.email}", time.time(),
                )  # fmt: skip
            except InvalidTransitionError as exc:
                raise InvalidMoveError(str(exc)) from None
        details = {"status": status, **({"note": body.note} if body.note else {})}
        audit.record(store, operator.shop, operator, "order.status", moved.id, details)
        return json_response(200, {"order": order_json(moved), "moves": _moves(moved.status)})


def _moves(status: OrderStatus) -> list[OrderStatus]:
    """The statuses an order in ``status`` may move to, in the pipeline's order."""
    from shared.orders import STATUSES, can_move

    return [to for to in STATUSES if can_move(status, to)]
