"""``GET /healthz``: 200 when the store answers reads and takes writes, 503 when it does not;
names the backends.

A store can answer reads while refusing every write (a full disk, a read-only replica, a lost
write permission), and then every chat turn fails: so the check also writes a small heartbeat
document and reads it back, at most once every ``HEARTBEAT_SECONDS`` per warm instance.
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
import time
from weakref import WeakKeyDictionary

from shared.app import App, get_app
from shared.exceptions import StoreUnavailableError
from shared.http import HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter
from shared.store import Store

handler = HTTPFunction("health", "/healthz")

HEARTBEAT_SECONDS = 10.0
HEARTBEAT_TTL = 3600.0
# When each store last took the heartbeat write (monotonic clock); per store, so a new App
# (another STORE_URL, a test) proves its own.
_last_write: WeakKeyDictionary[Store, float] = WeakKeyDictionary()


@handler.route("/", "GET")
def get_health(request: Request) -> Response:
    app = get_app()
    body = {"status": "ok", "store": app.store_backend, "llm": app.llm_status}
    try:
        app.store.ping()
    except StoreUnavailableError:
        return json_response(503, {**body, "status": "unavailable", "reason": "store_unreachable"})
    try:
        _prove_writes(app)
    except StoreUnavailableError:
        return json_response(503, {**body, "status": "unavailable", "reason": "store_unwritable"})
    return json_response(200, body)


def _prove_writes(app: App) -> None:
    """Write the heartbeat and read it back, unless this instance did so moments ago."""
    now = time.monotonic()
    store = app.store
    if now - _last_write.get(store, -HEARTBEAT_SECONDS) < HEARTBEAT_SECONDS:
        return
    shop = app.settings.default_shop
    # One document for every instance: nothing piles up where a backend keeps expired ones.
    at = time.time()
    store.put(shop, "health", "heartbeat", {"at": at}, expires_at=at + HEARTBEAT_TTL)
    if store.get(shop, "health", "heartbeat") is None:
        raise StoreUnavailableError("the heartbeat just written cannot be read")
    _last_write[store] = now


lambda_handler = lambda_adapter(handler)
health = gcf_adapter(handler)
