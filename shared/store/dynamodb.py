"""DynamoDB backend: one table, the low-level boto3 client, each write one conditional request.

Layout (single-table design; key attributes and TTL are the only table settings it needs)::

    pk   S  "{shop}#{collection}"   partition key: one collection of one shop, so a
                                    conversation's messages share a partition
    sk   S  document id             sort key: queries ordered by id are native
    d    M  the document's fields as native DynamoDB values (filters can reach ``d.field``)
    v    N  version, raised by ``ADD v 1`` in the same request as the write
    exp  N  exact ``expires_at`` (float seconds), absent when the document does not expire
    ttl  N  ``ceil(exp)`` for DynamoDB's TTL sweeper, which is lazy (up to days late), so
            every read filters on ``exp`` itself

Limitations:

- A query ordered by another field than the id reads every matching item of the partition and
  sorts in memory (DynamoDB orders only by the sort key). Collections that are large and read
  in order should be keyed so that id order is the wanted order, e.g. time-sortable message ids
  in ``conversations/{id}/messages``, and queried without ``order_by``.
- Numbers come back as ``int`` when integral, else ``float``: DynamoDB keeps a decimal, not a
  type (``1.0`` is stored as ``1``), and holds 38 significant digits in 1E-130..1E+126.
- Reads are strongly consistent (read-after-write, as the other backends), at twice the cost.
- A counter's first increment takes two requests: DynamoDB cannot create the map ``d`` and
  ADD into it in one expression.
- The SDK retries timeouts; a retried increment or create whose first attempt did land counts
  twice or reports AlreadyExistsError. DynamoDB offers no idempotency token outside transactions.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal, DecimalException
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from shared.aws import AWSClientOwner
from shared.backoff import Backoff
from shared.exceptions import (
    AlreadyExistsError,
    ConfigError,
    DocumentTooLargeError,
    NotFoundError,
    PreconditionFailedError,
    StoreError,
    StoreUnavailableError,
)
from shared.store.base import (
    Doc,
    Expect,
    Key,
    QuerySpec,
    Store,
    Write,
    batches,
    filter_and_page,
)

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
    from botocore.client import BaseClient

Item = dict[str, Any]  # an item in DynamoDB's wire format ({"attr": {"S": "..."}})

_TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_URL_OPTIONS = {"region", "endpoint_url"}
_BATCH_GET_MAX = 100  # DynamoDB's limit of keys per BatchGetItem
_MAX_ATTEMPTS = 8  # increments racing a counter's creation
# Retries of what DynamoDB left undone: unprocessed keys, a cancelled transaction.
_RETRY_BACKOFF = Backoff(attempts=_MAX_ATTEMPTS, base_delay=0.05, max_delay=1.0)
_TRANSACTION_MAX_ITEMS = 100  # DynamoDB's limit of actions per TransactWriteItems
# Of the 4 MB a transaction holds: room for the keys and the native encoding's overhead.
_TRANSACTION_MAX_BYTES = 3_000_000
# Cancellation reasons worth another try: a concurrent write to one of the items, throttling.
_RETRYABLE_CANCELLATIONS = frozenset(
    {"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
_ONE = {"N": "1"}
_PROJECTION = "#sk, #d, #v, #exp"  # what a Doc needs: not pk, not ttl
_LIVE = "(attribute_not_exists(#exp) OR #exp > :now)"
_PLACEHOLDER_RE = re.compile(r"#\w+")


class DynamoDBStore(AWSClientOwner, Store):
    backend = "dynamodb"
    # DynamoDB holds 400 KB per item, attribute names and keys included; the keys take up to
    # ~700 bytes, and a document's native encoding can be slightly larger than its JSON.
    max_document_bytes = 400_000

    def __init__(
        self,
        table: str,
        *,
        client: BaseClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if not _TABLE_RE.match(table):
            raise ConfigError(f"STORE_URL: {table!r} is not a DynamoDB table name")
        # Lazy: the SDK costs ~0.4 s of cold start, paid only by deployments that use it.
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._use_client(
            client,
            "dynamodb",
            region=region,
            endpoint_url=endpoint_url,
            connect_timeout=3,
            read_timeout=10,
        )
        self.table = table
        self._serializer: TypeSerializer = TypeSerializer()
        self._deserializer: TypeDeserializer = TypeDeserializer()

    @classmethod
    def from_url(
        cls, url: str, *, client: BaseClient | None = None, **_clients: Any
    ) -> DynamoDBStore:
        """``dynamodb://TABLE?region=eu-west-1&endpoint_url=http://127.0.0.1:5000``."""
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - _URL_OPTIONS
        if parts.path not in ("", "/") or unknown:
            raise ConfigError(
                f"STORE_URL: expected dynamodb://TABLE?region=...&endpoint_url=..., got {url!r}"
            )
        return cls(
            parts.netloc,
            client=client,
            region=options.get("region"),
            endpoint_url=options.get("endpoint_url"),
        )

    @staticmethod
    def ensure_table(client: BaseClient, table: str) -> None:
        """Create the table (on-demand billing) unless it exists, and enable TTL on ``ttl``."""
        try:
            _call(client, "describe_table", TableName=table)
        except _TableMissingError:
            _call(
                client,
                "create_table",
                TableName=table,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        waiter = client.get_waiter("table_exists")
        _call(waiter, "wait", TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        ttl = _call(client, "describe_time_to_live", TableName=table)
        if ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED":
            _call(
                client,
                "update_time_to_live",
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )

    def ping(self) -> None:
        # A GetItem proves the table, the credentials and the data plane; DescribeTable would
        # spend the much lower control-plane quota.
        self._request(
            "get_item",
            Key={"pk": {"S": "~ping"}, "sk": {"S": "~ping"}},
            ProjectionExpression="#pk",
        )

    # --- primitives --------------------------------------------------------------------------

    def _get_many(self, keys: Sequence[Key]) -> dict[str, Doc]:
        if len(keys) == 1:
            found = self._request(
                "get_item",
                Key=_key(keys[0]),
                ConsistentRead=True,
                ProjectionExpression=_PROJECTION,
            ).get("Item")
            return {keys[0].id: self._doc(found)} if found else {}
        docs: dict[str, Doc] = {}
        for start in range(0, len(keys), _BATCH_GET_MAX):
            chunk = keys[start : start + _BATCH_GET_MAX]
            pending: dict[str, Any] = {
                self.table: {
                    "Keys": [_key(k) for k in chunk],
                    "ConsistentRead": True,
                    "ProjectionExpression": _PROJECTION,
                    "ExpressionAttributeNames": _names(_PROJECTION),
                }
            }
            for _ in _RETRY_BACKOFF:
                response = _call(self.client, "batch_get_item", RequestItems=pending)
                for found in response["Responses"].get(self.table, []):
                    doc = self._doc(found)
                    docs[doc.id] = doc
                # Keys are left unprocessed under throttling or past 16 MB of response.
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise StoreUnavailableError("dynamodb: BatchGetItem kept leaving keys unprocessed")
        return docs

    def _write(self, write: Write) -> Doc:
        key = write.key
        update, values = self._put_expression(write)
        condition = None
        if write.expect is Expect.ABSENT:
            condition = "attribute_not_exists(#pk) OR #exp <= :now"
        elif write.expect is Expect.VERSION:
            condition = f"#v = :ver AND {_LIVE}"
            values[":ver"] = {"N": str(write.if_version)}
        if condition is not None:
            values[":now"] = _number(write.now)
        try:
            attributes = self._update(
                key,
                update,
                values,
                condition=condition,
                return_values="UPDATED_NEW",
                old_on_failure=write.expect is Expect.VERSION,
            )
        except _ConditionFailedError as failed:
            if write.expect is Expect.ABSENT:
                raise AlreadyExistsError(f"{key.collection}/{key.id} exists") from None
            if failed.item is None or _expired(failed.item, write.now):
                raise NotFoundError(f"{key.collection}/{key.id} not found") from None
            raise PreconditionFailedError(f"{key.collection}/{key.id} has changed") from None
        return Doc(key.id, write.data, int(attributes["v"]["N"]), write.expires_at)

    def _put_many(self, writes: Sequence[Write]) -> None:
        # TransactWriteItems rather than BatchWriteItem: a batch can only PutItem, which cannot
        # raise the stored version (``ADD``), and a version read beforehand could repeat under
        # a concurrent write, letting a stale conditional update through. A transaction of
        # updates costs twice the write units, keeps ``put``'s semantics exactly, and its
        # idempotency token (filled in by the SDK) makes the SDK's own retries safe.
        for batch in batches(writes, _TRANSACTION_MAX_ITEMS, _TRANSACTION_MAX_BYTES):
            actions = []
            for write in batch:
                update, values = self._put_expression(write)
                actions.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _key(write.key),
                            "UpdateExpression": update,
                            "ExpressionAttributeNames": _names(update),
                            "ExpressionAttributeValues": values,
                        }
                    }
                )
            for _ in _RETRY_BACKOFF:
                try:
                    _call(self.client, "transact_write_items", TransactItems=actions)
                    break
                except _CanceledError as canceled:
                    if not canceled.reasons <= _RETRYABLE_CANCELLATIONS:
                        raise StoreError(
                            f"dynamodb: batch write refused ({', '.join(sorted(canceled.reasons))})"
                        ) from None
            else:
                raise StoreUnavailableError("dynamodb: a batch write kept being cancelled")

    def _delete(self, key: Key, if_version: int | None) -> bool:
        now = time.time()
        request: dict[str, Any] = {"Key": _key(key), "ReturnValues": "ALL_OLD"}
        if if_version is not None:
            # A missing or expired document is not a conflict: there is nothing to keep.
            request["ConditionExpression"] = (
                "attribute_not_exists(#pk) OR #v = :ver OR #exp <= :now"
            )
            request["ExpressionAttributeValues"] = {
                ":ver": {"N": str(if_version)},
                ":now": _number(now),
            }
        try:
            old = self._request("delete_item", **request).get("Attributes")
        except _ConditionFailedError:
            raise PreconditionFailedError(f"{key.collection}/{key.id} has changed") from None
        return old is not None and not _expired(old, now)

    def _query(self, spec: QuerySpec) -> list[Doc]:
        values: Item = {":pk": {"S": f"{spec.shop}#{spec.collection}"}, ":now": _number(spec.now)}
        fields: dict[str, str] = {}
        filters = [_LIVE]
        for i, (field, wanted) in enumerate(spec.where.items()):
            # Typed: a BOOL never equals an N, as in the other backends.
            filters.append(f"#d.#w{i} = :w{i}")
            fields[f"#w{i}"] = field
            values[f":w{i}"] = self._encode(wanted)
        key_condition = "#pk = :pk"
        if spec.order_by is not None:
            filters.append("attribute_exists(#d.#o)")
            fields["#o"] = spec.order_by
        elif spec.after is not None:
            key_condition += " AND #sk < :after" if spec.descending else " AND #sk > :after"
            values[":after"] = {"S": spec.after[1]}
        request: dict[str, Any] = {
            "KeyConditionExpression": key_condition,
            "FilterExpression": " AND ".join(filters),
            "ProjectionExpression": _PROJECTION,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
            "ScanIndexForward": not spec.descending,
        }
        by_id = spec.order_by is None
        docs: list[Doc] = []
        while True:
            if by_id and not spec.where:
                # Limit counts items read before filtering; only expired ones are filtered
                # out here, so asking for what is missing rarely costs another page.
                request["Limit"] = spec.limit - len(docs)
            response = self._request("query", fields=fields, **request)
            docs += [self._doc(found) for found in response["Items"]]
            start = response.get("LastEvaluatedKey")
            if start is None or (by_id and len(docs) >= spec.limit):
                break
            request["ExclusiveStartKey"] = start
        return docs[: spec.limit] if by_id else filter_and_page(docs, spec)

    def _increment(
        self, key: Key, field: str, amount: int, expires_at: float | None, now: float
    ) -> int:
        # DynamoDB cannot create the map ``d`` and ADD into it in one expression, so: ADD to a
        # live counter, else create it fresh (conditionally, over nothing or an expired one);
        # losing that creation race means it is live now, so ADD again.
        for _ in range(_MAX_ATTEMPTS):
            try:
                attributes = self._update(
                    key,
                    "ADD #d.#f :n, #v :one",
                    {":n": {"N": str(amount)}, ":one": _ONE, ":now": _number(now)},
                    condition=f"attribute_exists(#pk) AND {_LIVE}",
                    return_values="UPDATED_NEW",
                    fields={"#f": field},
                )
                return int(attributes["d"]["M"][field]["N"])
            except _ConditionFailedError:
                pass
            values: Item = {
                ":d": self._encode({field: amount}),
                ":one": _ONE,
                ":now": _number(now),
            }
            try:
                self._update(
                    key,
                    f"SET #d = :d{_expiry(expires_at, values)} ADD #v :one",
                    values,
                    condition="attribute_not_exists(#pk) OR #exp <= :now",
                )
                return amount
            except _ConditionFailedError:
                continue
        raise StoreUnavailableError(f"dynamodb: counter {key.collection}/{key.id} kept racing")

    # --- requests and encoding ---------------------------------------------------------------

    def _request(
        self, operation: str, *, fields: Mapping[str, str] | None = None, **request: Any
    ) -> dict[str, Any]:
        """One call on this table; names every ``#placeholder`` its expressions use."""
        expressions = [v for k, v in request.items() if k.endswith("Expression")]
        if expressions:
            request["ExpressionAttributeNames"] = _names(*expressions, fields=fields)
        response: dict[str, Any] = _call(self.client, operation, TableName=self.table, **request)
        return response

    def _update(
        self,
        key: Key,
        update: str,
        values: Item,
        *,
        condition: str | None = None,
        return_values: str = "NONE",
        old_on_failure: bool = False,
        fields: Mapping[str, str] | None = None,
    ) -> Item:
        request: dict[str, Any] = {
            "Key": _key(key),
            "UpdateExpression": update,
            "ExpressionAttributeValues": values,
            "ReturnValues": return_values,
        }
        if condition is not None:
            request["ConditionExpression"] = condition
        if old_on_failure:
            # The failed item tells NotFound from PreconditionFailed without a second read.
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        response = self._request("update_item", fields=fields, **request)
        attributes: Item = response.get("Attributes", {})
        return attributes

    def _put_expression(self, write: Write) -> tuple[str, Item]:
        """The update that stores ``write.data`` and its expiry, and its values."""
        # UpdateItem rather than PutItem: ``ADD v 1`` raises the version atomically, including
        # over an expired document, so versions never repeat for a key.
        values: Item = {":d": self._encode(write.data), ":one": _ONE}
        return f"SET #d = :d{_expiry(write.expires_at, values)} ADD #v :one", values

    def _encode(self, value: Any) -> dict[str, Any]:
        try:
            encoded: dict[str, Any] = self._serializer.serialize(_decimals(value))
        except (DecimalException, TypeError) as exc:  # NaN, infinities, beyond 38 digits
            raise StoreError(f"dynamodb cannot hold a number in this document: {exc!r}") from exc
        return encoded

    def _doc(self, item: Item) -> Doc:
        return Doc(
            id=item["sk"]["S"],
            data=_plain(self._deserializer.deserialize(item["d"])),
            version=int(item["v"]["N"]),
            expires_at=float(item["exp"]["N"]) if "exp" in item else None,
        )


class _ConditionFailedError(Exception):
    """A ConditionExpression was false; ``item`` is the stored one when it was asked for."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("conditional check failed")
        self.item = item


class _CanceledError(Exception):
    """A transaction was cancelled; ``reasons`` are the codes of its actions ("None": fine)."""

    def __init__(self, reasons: set[str]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons


class _TableMissingError(StoreUnavailableError):
    pass


def _call(target: Any, operation: str, **request: Any) -> Any:
    """Invoke the SDK and translate its errors: the one place vendor errors cross."""
    from botocore.exceptions import BotoCoreError, ClientError  # loaded with the client

    try:
        return getattr(target, operation)(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code == "ConditionalCheckFailedException":
            raise _ConditionFailedError(exc.response.get("Item")) from exc
        if code == "TransactionCanceledException":
            reasons = exc.response.get("CancellationReasons") or [{"Code": "Unknown"}]
            too_large = [r["Message"] for r in reasons if "Item size" in r.get("Message", "")]
            if too_large:
                raise DocumentTooLargeError(f"dynamodb: {too_large[0]}") from exc
            raise _CanceledError({r.get("Code", "Unknown") for r in reasons}) from exc
        if code == "ValidationException" and "Item size" in message:
            raise DocumentTooLargeError(f"dynamodb: {message}") from exc
        if code == "ValidationException":  # a request DynamoDB will never accept: not retryable
            raise StoreError(f"dynamodb {operation}: {message}") from exc
        if code == "ResourceNotFoundException":
            raise _TableMissingError(f"dynamodb {operation}: {message}") from exc
        raise StoreUnavailableError(f"dynamodb {operation}: {code}: {message}") from exc
    except BotoCoreError as exc:  # unreachable endpoint, timeouts, credentials
        raise StoreUnavailableError(f"dynamodb {operation}: {exc}") from exc


def _names(*expressions: str, fields: Mapping[str, str] | None = None) -> dict[str, str]:
    # Every attribute goes through a placeholder: ``ttl`` is a reserved word, field names may be
    # too, and DynamoDB rejects names that are declared but unused.
    used = set(_PLACEHOLDER_RE.findall(" ".join(expressions)))
    fields = fields or {}
    return {p: fields.get(p, p[1:]) for p in used}


def _key(key: Key) -> Item:
    return {"pk": {"S": f"{key.shop}#{key.collection}"}, "sk": {"S": key.id}}


def _number(value: float) -> dict[str, str]:
    return {"N": str(Decimal(repr(value)))}


def _expiry(expires_at: float | None, values: Item) -> str:
    """The SET clauses of the expiry (adding their values), or a REMOVE of a previous one."""
    if expires_at is None:
        return " REMOVE #exp, #ttl"
    values[":exp"] = _number(expires_at)
    # Rounded up: the sweeper must never delete a document that is still live.
    values[":ttl"] = {"N": str(math.ceil(expires_at))}
    return ", #exp = :exp, #ttl = :ttl"


def _expired(item: Item, now: float) -> bool:
    return "exp" in item and float(item["exp"]["N"]) <= now


def _decimals(value: Any) -> Any:
    """JSON values with floats as Decimals (exact via repr), which the serializer requires."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    """The deserializer's Decimals back as int (when integral) or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
