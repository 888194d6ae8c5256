"""The console's live view: ``GET /events``, the operator's shop's event log as it grows
(``shared/events.py``).

With ``Accept: text/event-stream`` it is a Server-Sent Events stream: a ``ready`` event first
(its id is the cursor the stream starts at), then each event under its id, read from the store
every ``POLL_SECONDS``; the stream ends after ``STREAM_SECONDS`` and the browser's EventSource
reconnects with ``Last-Event-ID``, so nothing is missed in between. Otherwise it is a JSON
long-poll: ``{events, cursor}`` as soon as there is an event after ``after``, else an empty list
after ``LONG_POLL_SECONDS``; the client calls again with the cursor.

Where the platform buffers responses (AWS's HTTP API: settings ``HTTP_STREAMING`` false), a
stream would reach the browser whole, only at its end: both forms then wait at most
``BUFFERED_WAIT_SECONDS`` (and a stream tells the browser to reconnect at once), which makes
the EventSource a poller every couple of seconds and keeps each Lambda call short.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from shared import events
from shared.admin.auth import operator_of
from shared.events import Event
from shared.exceptions import InvalidInputError
from shared.http import HTTPFunction, Request, Response, SSEEvent, json_response, sse_response
from shared.ids import is_sortable_id
from shared.store import Store

# Module constants, so that tests can shorten every wait.
POLL_SECONDS = 1.0
STREAM_SECONDS = 25.0
LONG_POLL_SECONDS = 20.0
BUFFERED_WAIT_SECONDS = 2.0
RETRY_MS = 1000  # a stream that ended: the browser reconnects this soon


def register(api: HTTPFunction) -> None:
    @api.route("/events", "GET")
    def live(request: Request) -> Response:
        from shared.app import get_app

        shop = operator_of(request).shop
        app = get_app()
        # A reconnecting EventSource sends the last id it read; its URL still has the first after=.
        after = request.header("last-event-id") or request.query.get("after") or None
        if after is not None and not is_sortable_id(after):
            raise InvalidInputError("'after' must be a cursor this route returned")
        cursor = after or events.start(time.time())
        streaming = app.settings.http_streaming
        if "text/event-stream" in request.header("accept"):
            seconds = STREAM_SECONDS if streaming else BUFFERED_WAIT_SECONDS
            stream = _stream(app.store, shop, cursor, seconds, until_found=not streaming)
            response = sse_response(stream, retry_ms=RETRY_MS if streaming else 0)
        else:
            seconds = LONG_POLL_SECONDS if streaming else BUFFERED_WAIT_SECONDS
            found = next((batch for batch in _polls(app.store, shop, cursor, seconds) if batch), [])
            cursor = found[-1].id if found else cursor
            response = json_response(
                200, {"events": [event.to_json() for event in found], "cursor": cursor}
            )
        response.shop = shop
        return response


def _stream(
    store: Store, shop: str, cursor: str, seconds: float, *, until_found: bool
) -> Iterator[SSEEvent]:
    """The SSE events; ``until_found``: end with the first events found (a buffered platform
    delivers nothing before the end)."""
    yield SSEEvent("ready", {"cursor": cursor}, cursor)
    for batch in _polls(store, shop, cursor, seconds):
        for event in batch:
            yield SSEEvent(event.kind, event.to_json(), event.id)
        if batch and until_found:
            return


def _polls(store: Store, shop: str, after: str, seconds: float) -> Iterator[list[Event]]:
    """What is new after ``after``, read every POLL_SECONDS for ``seconds`` (at least once; a
    full page is followed at once by the next)."""
    deadline = time.monotonic() + seconds
    while True:
        found = events.read(store, shop, after, time.time())
        yield found
        after = found[-1].id if found else after
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if len(found) < events.PAGE_SIZE:
            time.sleep(min(POLL_SECONDS, left))
