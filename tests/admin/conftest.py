"""The console's fixtures: an app with the console on, and an operator signed in to a shop."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from shared.admin import auth
from shared.app import App

ADMIN_SECRET = "admin-session-secret-for-the-tests-0123456789"


@pytest.fixture
def admin_app(make_app: Callable[..., App]) -> App:
    return make_app(ADMIN_SESSION_SECRET=ADMIN_SECRET)


def signed_in(app: App, shop: str, email: str = "awa@maison-teranga.example") -> dict[str, str]:
    """Headers of a request by an operator of ``shop``: the session cookie (of a session
    recorded in the store, as a sign-in makes) and the CSRF token."""
    operator = auth.start_session(app.store, app.settings, f"op-{email}", shop, email, time.time())
    cookie = auth.cookie_value(app.settings, operator)
    return {"cookie": f"{auth.SESSION_COOKIE}={cookie}", auth.CSRF_HEADER.lower(): operator.csrf}
