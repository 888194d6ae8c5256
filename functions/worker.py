"""The worker function: runs queued work (a WhatsApp or Telegram turn) as the platform delivers it.

Targets:
- ``lambda_handler`` (AWS): an SQS FIFO event source mapping with ``ReportBatchItemFailures``.
  A message that fails with attempts left (``ApproximateReceiveCount``) is reported in
  ``batchItemFailures`` and SQS delivers it again after the visibility timeout; so are the later
  messages of its group in the batch, unprocessed, so that a conversation keeps its order. On
  its last attempt a failing message becomes a dead letter and is reported done, and so is a
  body that is not a work item, at once: SQS then deletes them.
- ``worker`` (functions-framework): a Pub/Sub push subscription. 2xx acknowledges, 5xx asks
  Pub/Sub to deliver again; ``deliveryAttempt`` (sent when the subscription has a dead-letter
  policy) counts the attempts. The push request's OIDC token is not checked here: the function
  is deployed without public access and only the subscription's service account may invoke it,
  so Google's front end rejects other callers before this code runs (see ``infra/``).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from shared.app import App, get_app
from shared.exceptions import InvalidInputError
from shared.log import log_event
from shared.worker import deliver, parse_item, record_unreadable


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    app = get_app()
    failures: list[str] = []
    failed_groups: set[str] = set()
    records = event.get("Records") or []
    for record in records:
        message_id = str(record["messageId"])
        attributes = record.get("attributes") or {}
        group = attributes.get("MessageGroupId")  # None on a standard queue
        if group is not None and group in failed_groups:
            failures.append(message_id)  # waits for the failed message before it
            continue
        attempt = int(attributes.get("ApproximateReceiveCount", 1))
        if not _deliver(app, "sqs", message_id, str(record.get("body", "")).encode(), attempt):
            failures.append(message_id)
            if group is not None:
                failed_groups.add(group)
    log_event("sqs_batch", records=len(records), failures=len(failures))
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}


def worker(request: Any) -> tuple[str, int]:
    """Pub/Sub push: ``{"message": {"data", "attributes", "messageId"}, "deliveryAttempt"?}``."""
    try:
        envelope = json.loads(request.get_data(cache=False))
        message = envelope["message"]
        message_id = str(message["messageId"])
        data = base64.b64decode(message.get("data", ""), validate=True)
        attempt = int(envelope.get("deliveryAttempt") or 1)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return "not a Pub/Sub push request", 400
    return ("", 204) if _deliver(get_app(), "pubsub", message_id, data, attempt) else ("", 500)


def _deliver(app: App, trigger: str, message_id: str, body: bytes, attempt: int) -> bool:
    """Deliver one message; False when the platform should deliver it again."""
    try:
        try:
            item = parse_item(body)
        except InvalidInputError as exc:
            # Delivering it again cannot make it readable: kept at once, under the default shop.
            text = body.decode("utf-8", "replace")
            shop = app.settings.default_shop
            record_unreadable(app.store, shop, f"{trigger}:{message_id}", text, str(exc))
            return True
        deliver(item.model_copy(update={"attempt": attempt}), app=app)
    except Exception as exc:  # noqa: BLE001 - reported to the platform, which delivers it again
        log_event(
            "delivery_failed", trigger=trigger, attempt=attempt, error_type=type(exc).__name__
        )
        return False
    return True
