"""Who is calling: the operator a request's session cookie names.

A session cookie is ``<payload>.<signature>``: the payload (operator, shop, expiry, CSRF token)
in URL-safe base64 JSON, signed with HMAC-SHA256 under ``ADMIN_SESSION_SECRET``. Every write
must also send the session's CSRF token in ``X-CSRF-Token`` (a page of another site can make the
browser send the cookie, never read the token); the cookie is SameSite=Strict besides.

The cookie names a server-side session, a record in the shop's ``admin_sessions`` that expires
with it: signing out, a password change or the operator's removal deletes the record, and a copy
of the cookie stops working at once. ``operator_of`` reads that record, one read per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace
from http.cookies import CookieError, SimpleCookie

from shared.admin.exceptions import ConsoleOffError, CSRFError, NotSignedInError
from shared.http import Request
from shared.settings import Settings
from shared.store import Store

SESSION_COOKIE = "comptoir_admin"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/admin"
SESSIONS = "admin_sessions"  # per shop: session id -> {operator, by_link}, expiring with it


@dataclass(frozen=True)
class Operator:
    """An operator signed in to one shop's console."""

    id: str
    shop: str
    email: str
    session: str  # this sign-in's id
    csrf: str  # sent back by the console in X-CSRF-Token on every write
    expires_at: float
    by_link: bool = False  # signed in with a one-use link: may set a password without the old one


def _key(settings: Settings) -> bytes:
    secret = settings.admin_session_secret
    if secret is None:
        raise ConsoleOffError("ADMIN_SESSION_SECRET is not set: the console is off")
    return secret.get_secret_value().encode()


def _sign(key: bytes, payload: bytes) -> str:
    digest = hmac.new(key, payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(settings: Settings, operator_id: str, shop: str, email: str, now: float) -> Operator:
    """A new sign-in for the operator, valid ``ADMIN_SESSION_HOURS``."""
    return Operator(
        id=operator_id,
        shop=shop,
        email=email,
        session=secrets.token_hex(16),  # a store id: no leading "__"
        csrf=secrets.token_urlsafe(24),
        expires_at=now + settings.admin_session_hours * 3600,
    )


def start_session(
    store: Store,
    settings: Settings,
    operator_id: str,
    shop: str,
    email: str,
    now: float,
    *,
    by_link: bool = False,
) -> Operator:
    """A new sign-in, recorded (create-only: a session id is never reused) so it can be ended."""
    _key(settings)  # the console is on, before anything is recorded
    operator = replace(issue(settings, operator_id, shop, email, now), by_link=by_link)
    record = {"operator": operator_id, "by_link": by_link}
    store.create(shop, SESSIONS, operator.session, record, expires_at=operator.expires_at)
    return operator


def end_sessions(store: Store, shop: str, operator_id: str, keep: str | None = None) -> None:
    """End the operator's sessions but ``keep`` (a password change keeps the one making it)."""
    for doc in list(store.scan(shop, SESSIONS, where={"operator": operator_id})):
        if doc.id != keep:
            store.delete(shop, SESSIONS, doc.id)


def cookie_value(settings: Settings, operator: Operator) -> str:
    payload = json.dumps(
        {
            "o": operator.id,
            "s": operator.shop,
            "e": operator.email,
            "i": operator.session,
            "c": operator.csrf,
            "x": operator.expires_at,
        },
        separators=(",", ":"),
    ).encode()
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"{encoded}.{_sign(_key(settings), encoded.encode())}"


def set_cookie_header(settings: Settings, operator: Operator | None, now: float) -> str:
    """The ``Set-Cookie`` value that keeps ``operator`` signed in (None: signs out)."""
    secure = "; Secure" if settings.admin_cookie_secure else ""
    flags = f"Path={COOKIE_PATH}; HttpOnly{secure}; SameSite=Strict"
    if operator is None:
        return f"{SESSION_COOKIE}=; Max-Age=0; {flags}"
    max_age = max(0, int(operator.expires_at - now))
    return f"{SESSION_COOKIE}={cookie_value(settings, operator)}; Max-Age={max_age}; {flags}"


def _cookie(request: Request) -> str:
    try:
        jar = SimpleCookie(request.header("cookie"))
    except CookieError:
        return ""
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else ""


def read_session(settings: Settings, request: Request, now: float) -> Operator:
    """The operator the request's cookie names; raises NotSignedInError for none, a forged or
    an expired one."""
    value = _cookie(request)
    encoded, _, signature = value.partition(".")
    if not encoded or not hmac.compare_digest(signature, _sign(_key(settings), encoded.encode())):
        raise NotSignedInError("sign in to the console")
    data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    operator = Operator(
        id=str(data["o"]),
        shop=str(data["s"]),
        email=str(data["e"]),
        session=str(data["i"]),
        csrf=str(data["c"]),
        expires_at=float(data["x"]),
    )
    if operator.expires_at <= now:
        raise NotSignedInError("the session has expired: sign in again")
    return operator


def operator_of(request: Request, *, write: bool = False) -> Operator:
    """The signed-in operator of the request, whose session is still recorded; a write must
    carry the session's CSRF token."""
    from shared.app import get_app

    app = get_app()
    operator = read_session(app.settings, request, time.time())
    record = app.store.get(operator.shop, SESSIONS, operator.session)
    if record is None or record.data.get("operator") != operator.id:
        raise NotSignedInError("the session has ended: sign in again")
    operator = replace(operator, by_link=bool(record.data.get("by_link")))
    if write and not hmac.compare_digest(request.header(CSRF_HEADER), operator.csrf):
        raise CSRFError(f"send the session's token in {CSRF_HEADER}")
    return operator
