"""A shop's API keys, for agents calling its tools over MCP (``functions/mcp_server.py``).

A key is shown once, when made (``python -m shared apikey create``); only its SHA-256 is stored,
as the document id in the ``platform`` scope's ``api_keys`` (a bearer token finds its shop in
one read), with the shop, the scopes it grants and, optionally, the one customer whose orders it
may read. A revoked key stays, marked, so the listing says when it stopped.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal, get_args

from shared.exceptions import ApiKeyError, InvalidInputError, NotFoundError
from shared.models import Model, mutate
from shared.store import Store

PLATFORM = "platform"
API_KEYS = "api_keys"
PREFIX = "ck_"
Scope = Literal["catalog:read", "orders:read", "orders:write"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
LAST_USED_EVERY_S = 60.0  # ``last_used`` is written at most this often: not a write per call


class ApiKey(Model):
    id: str  # the key's sha256, hex: the document id
    shop: str
    name: str = ""
    scopes: list[Scope]
    customer_id: str | None = None  # the one customer whose orders the key may read
    created_at: float
    updated_at: float
    last_used: float | None = None
    revoked_at: float | None = None
    prefix: str = ""  # the key's first characters, to tell keys apart in a listing


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str) -> list[Scope]:
    """``catalog:read,orders:write`` as scopes; InvalidInputError naming the known ones."""
    scopes: list[Scope] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        scope = next((s for s in SCOPES if s == part), None)
        if scope is None:
            raise InvalidInputError(f"unknown scope {part!r} (scopes: {', '.join(SCOPES)})")
        if scope not in scopes:
            scopes.append(scope)
    if not scopes:
        raise InvalidInputError(f"name at least one scope ({', '.join(SCOPES)})")
    return scopes


def create_key(
    store: Store,
    shop: str,
    scopes: list[Scope],
    now: float,
    *,
    name: str = "",
    customer_id: str | None = None,
) -> tuple[str, ApiKey]:
    """A new key (returned once, never stored) and its record, written create-only."""
    key = PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(
        id=digest_of(key), shop=shop, name=name, scopes=scopes, customer_id=customer_id,
        created_at=now, updated_at=now, prefix=key[:10],
    )  # fmt: skip
    store.create(PLATFORM, API_KEYS, record.id, record.to_doc())
    return key, record


def list_keys(store: Store, shop: str) -> list[ApiKey]:
    """The shop's keys, revoked ones included, oldest first."""
    found: list[ApiKey] = []
    cursor: str | None = None
    while True:
        page = store.query(PLATFORM, API_KEYS, where={"shop": shop}, limit=100, cursor=cursor)
        found.extend(ApiKey.from_doc(doc) for doc in page.items)
        cursor = page.cursor
        if cursor is None:
            return sorted(found, key=lambda k: k.created_at)


def find_key(store: Store, shop: str, key_or_prefix: str) -> ApiKey:
    """The shop's key whose prefix (as listed) or whole value this is."""
    matches = [
        k
        for k in list_keys(store, shop)
        if k.prefix == key_or_prefix or k.id == digest_of(key_or_prefix)
    ]
    if len(matches) != 1:
        raise NotFoundError(f"no single key {key_or_prefix[:10]!r} in shop {shop!r}")
    return matches[0]


def revoke_key(store: Store, shop: str, key_or_prefix: str, now: float) -> ApiKey:
    """Mark the key revoked (its own record only, a conditional write)."""
    record = find_key(store, shop, key_or_prefix)

    def revoke(current: ApiKey) -> ApiKey:
        if current.shop != shop or current.revoked_at is not None:
            return current
        return current.model_copy(update={"revoked_at": now})

    return mutate(store, PLATFORM, API_KEYS, record.id, ApiKey, revoke)[0]


def authenticate(store: Store, key: str, now: float) -> ApiKey:
    """The live key record for a bearer token; ApiKeyError otherwise. Stamps ``last_used``."""
    if not key.startswith(PREFIX) or len(key) > 200:
        raise ApiKeyError("send Authorization: Bearer <API key>")
    doc = store.get(PLATFORM, API_KEYS, digest_of(key))
    record = ApiKey.from_doc(doc) if doc is not None else None
    if record is None or record.revoked_at is not None:
        raise ApiKeyError("unknown or revoked API key")
    if record.last_used is None or now - record.last_used >= LAST_USED_EVERY_S:

        def used(current: ApiKey) -> ApiKey:
            return current.model_copy(update={"last_used": now})

        record = mutate(store, PLATFORM, API_KEYS, record.id, ApiKey, used)[0]
    return record
