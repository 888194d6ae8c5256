"""The console's session routes: who am I."""

from __future__ import annotations

from shared.admin.auth import operator_of
from shared.http import HTTPFunction, Request, Response, json_response


def register(api: HTTPFunction) -> None:
    @api.route("/me", "GET")
    def me(request: Request) -> Response:
        operator = operator_of(request)
        return json_response(
            200, {"email": operator.email, "shop": operator.shop, "csrf": operator.csrf}
        )
