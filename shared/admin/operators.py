"""The console's operators: who may sign in to a shop's console, and how.

An operator belongs to one shop (``admin_operators`` in its scope). Signing in by e-mail has to
find the shop, so the platform scope holds an index, ``admin_operator_emails``: the sha256 of the
lower-cased e-mail -> {shop, operator}, created create-only, so an e-mail is one operator of one
shop and a second shop claiming it is refused. The digest keeps addresses out of the ids.

Passwords: scrypt (n=2**14, r=8, p=1, a 16-byte salt) in a versioned string, so the cost can be
raised later; compared in constant time. An unknown e-mail costs the same scrypt: the answer's
time does not tell which e-mails are operators'.

Links (first sign-in, or a forgotten password): a 32-byte random token of which only the sha256
is stored (platform scope, ``admin_links``), valid 24 h, used once: a use is a create-only marker
(``admin_link_uses``), so two uses at once make one sign-in.

Failed sign-ins are counted per e-mail (5) and per client address (20) in fixed 15-minute
windows (platform-scope counters); past either, signing in answers 429 until the window ends,
even with the right password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from functools import cache

from shared.admin import auth
from shared.admin.exceptions import ConflictError, InvalidCredentialsError, UnknownRecordError
from shared.exceptions import AlreadyExistsError, InvalidInputError, RateLimitedError
from shared.ids import new_sortable_id
from shared.log import log_event
from shared.models import Model, mutate
from shared.schedules import PLATFORM
from shared.settings import Settings
from shared.store import Store

OPERATORS = "admin_operators"  # per shop: operator id -> OperatorRecord
EMAILS = "admin_operator_emails"  # platform: sha256(e-mail) -> {shop, operator}
LINKS = "admin_links"  # platform: sha256(token) -> {shop, operator, expires_at}
LINK_USES = "admin_link_uses"  # platform: sha256(token) of a used link, create-only
FAILURES = "admin_login_failures"  # platform: failed sign-ins of an e-mail or address, by window

PASSWORD_MIN = 10
PASSWORD_MAX = 1024  # scrypt reads it all: a bound on what one request can make it hash
LINK_SECONDS = 24 * 3600
LOGIN_WINDOW = 15 * 60
EMAIL_FAILURES = 5
CLIENT_FAILURES = 20
DEMO_EMAIL = "demo@comptoir.example"

_SCRYPT_VERSION = "scrypt1"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_REFUSED = "wrong e-mail, password or link"  # never says which


class OperatorRecord(Model):
    id: str
    shop: str
    email: str
    password_hash: str | None = None  # None until the first password is set (after a link)
    created_at: float
    updated_at: float | None = None


def normal_email(email: str) -> str:
    """``email`` trimmed and lower-cased; InvalidInputError unless it looks like one."""
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise InvalidInputError("not an e-mail address")
    return email


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)


def hash_password(password: str) -> str:
    """``scrypt1$n$r$p$salt$key``: what is stored, never the password."""
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"{_SCRYPT_VERSION}${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(key)}"


@cache
def _stand_in_hash() -> str:
    """Checked when there is no stored hash, so that case takes the same time."""
    return hash_password(secrets.token_urlsafe(16))


def password_matches(password: str, stored: str | None) -> bool:
    version, n, r, p, salt, key = (stored or _stand_in_hash()).split("$")
    if version != _SCRYPT_VERSION:
        raise ValueError(f"unknown password hash {version!r}")
    computed = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    return hmac.compare_digest(computed, _unb64(key)) and stored is not None


def validate_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInputError(f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters")


# --- operators ----------------------------------------------------------------------------------


def find_by_email(store: Store, email: str) -> OperatorRecord | None:
    """The operator signing in with ``email``, in whichever shop; None for none."""
    try:
        digest = _digest(normal_email(email))
    except InvalidInputError:
        return None
    index = store.get(PLATFORM, EMAILS, digest)
    if index is None:
        return None
    return load(store, str(index.data["shop"]), str(index.data["operator"]))


def load(store: Store, shop: str, operator_id: str) -> OperatorRecord | None:
    doc = store.get(shop, OPERATORS, operator_id)
    return OperatorRecord.from_doc(doc) if doc is not None else None


def add_operator(store: Store, shop: str, email: str, now: float) -> OperatorRecord:
    """A new operator of ``shop``, with no password yet (give them a link); ConflictError when
    the e-mail is any shop's operator already."""
    email = normal_email(email)
    record = OperatorRecord(id=new_sortable_id(), shop=shop, email=email, created_at=now)
    claim = {"shop": shop, "operator": record.id}
    try:
        store.create(PLATFORM, EMAILS, _digest(email), claim)
    except AlreadyExistsError:
        raise ConflictError("this e-mail is an operator's already (of a shop)") from None
    try:
        store.create(shop, OPERATORS, record.id, record.to_doc())
    except Exception:
        store.delete(PLATFORM, EMAILS, _digest(email))  # the claim without its operator
        raise
    return record


def list_operators(store: Store, shop: str) -> list[OperatorRecord]:
    return [OperatorRecord.from_doc(doc) for doc in store.scan(shop, OPERATORS)]


def remove_operator(store: Store, shop: str, email: str) -> OperatorRecord:
    """Remove ``shop``'s operator ``email``: their sessions end, their links stop working."""
    digest = _digest(normal_email(email))
    claim = store.get(PLATFORM, EMAILS, digest)
    record = None
    if claim is not None and claim.data["shop"] == shop:
        record = load(store, shop, str(claim.data["operator"]))
    if claim is None or record is None:
        raise UnknownRecordError("no such operator in this shop")
    store.delete(shop, OPERATORS, record.id)
    store.delete(PLATFORM, EMAILS, digest, if_version=claim.version)  # the claim read, only
    auth.end_sessions(store, shop, record.id)
    return record


def set_password(store: Store, operator: auth.Operator, current: str | None, password: str) -> None:
    """Change the signed-in operator's password and end their other sessions. The current one
    is asked unless they have none yet or signed in with a link in this session."""
    validate_password(password)
    record = load(store, operator.shop, operator.id)
    if record is None:
        raise UnknownRecordError("this operator was removed")
    needs_current = record.password_hash is not None and not operator.by_link
    if (current is not None or needs_current) and not password_matches(
        current or "", record.password_hash
    ):
        raise InvalidCredentialsError("the current password is wrong")
    new_hash = hash_password(password)
    mutate(
        store,
        operator.shop,
        OPERATORS,
        operator.id,
        OperatorRecord,
        lambda r: r.model_copy(update={"password_hash": new_hash}),
    )
    auth.end_sessions(store, operator.shop, operator.id, keep=operator.session)


# --- links --------------------------------------------------------------------------------------


def new_link(store: Store, record: OperatorRecord, now: float) -> str:
    """A one-use sign-in token for ``record``, valid LINK_SECONDS; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    expires_at = now + LINK_SECONDS
    link = {"shop": record.shop, "operator": record.id, "expires_at": expires_at}
    store.create(PLATFORM, LINKS, _digest(token), link, expires_at=expires_at)
    return token


def link_url(settings: Settings, token: str) -> str:
    return f"{settings.admin_url}#link={token}"


def redeem_link(store: Store, token: str, client: str, now: float) -> OperatorRecord:
    """The operator a live, unused link names; the link is used up."""
    _check_rate(store, None, client, now)
    digest = _digest(token)
    link = store.get(PLATFORM, LINKS, digest)
    record = None
    if link is not None and float(link.data["expires_at"]) > now:
        record = load(store, str(link.data["shop"]), str(link.data["operator"]))
    if link is not None and record is not None:
        try:
            store.create(PLATFORM, LINK_USES, digest, {"at": now}, expires_at=link.expires_at)
        except AlreadyExistsError:  # used already, or by a concurrent request
            record = None
    if link is None or record is None:
        _count_failure(store, None, client, now)
        raise InvalidCredentialsError(_REFUSED)
    store.delete(PLATFORM, LINKS, digest)
    return record


def demo_link(store: Store, settings: Settings, shop: str, now: float) -> str:
    """A first sign-in link for the demo operator of ``shop`` (made on first use)."""
    record = find_by_email(store, DEMO_EMAIL) or add_operator(store, shop, DEMO_EMAIL, now)
    return link_url(settings, new_link(store, record, now))


# --- signing in ---------------------------------------------------------------------------------


def authenticate(
    store: Store, email: str, password: str, client: str, now: float
) -> OperatorRecord:
    """The operator ``email`` and ``password`` name; InvalidCredentialsError otherwise (the
    same for an unknown e-mail and a wrong password), RateLimitedError past the limits."""
    email = email.strip().lower()
    _check_rate(store, email, client, now)
    record = find_by_email(store, email)
    if not password_matches(password, record.password_hash if record else None):
        _count_failure(store, email, client, now)
        raise InvalidCredentialsError(_REFUSED)
    assert record is not None  # a stored hash matched
    return record


def _failure_counters(email: str | None, client: str, now: float) -> tuple[float, dict[str, int]]:
    """The end of the current window and its counters' ids with their limits."""
    window = int(now // LOGIN_WINDOW)
    counters = {f"client:{_digest(client)}:{window}": CLIENT_FAILURES}
    if email is not None:
        counters[f"email:{_digest(email)}:{window}"] = EMAIL_FAILURES
    return (window + 1) * LOGIN_WINDOW, counters


def _check_rate(store: Store, email: str | None, client: str, now: float) -> None:
    window_end, counters = _failure_counters(email, client, now)
    found = store.get_many(PLATFORM, FAILURES, list(counters))
    if any(int(doc.data["n"]) >= counters[doc_id] for doc_id, doc in found.items()):
        log_event("admin_login_rate_limited")
        raise RateLimitedError(
            "too many failed sign-ins: wait and try again", int(window_end - now) + 1
        )


def _count_failure(store: Store, email: str | None, client: str, now: float) -> None:
    window_end, counters = _failure_counters(email, client, now)
    for doc_id in counters:
        store.increment(PLATFORM, FAILURES, doc_id, "n", expires_at=window_end + 60)
    log_event("admin_login_refused")
