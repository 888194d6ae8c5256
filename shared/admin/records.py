"""What the console's areas share about records: an id or cursor the client sent that names
nothing in the operator's shop is the client's mistake, never a server error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shared.admin.exceptions import UnknownRecordError
from shared.exceptions import InvalidInputError, InvalidKeyError, NotFoundError

PAGE_SIZE = 50


@contextmanager
def known() -> Iterator[None]:
    """An id not in the operator's shop (or that cannot be an id) is a 404, as one that never
    was: another shop's ids answer the same."""
    try:
        yield
    except (NotFoundError, InvalidKeyError) as exc:
        raise UnknownRecordError(str(exc)) from None


@contextmanager
def known_cursor() -> Iterator[None]:
    """A list's ``cursor`` the store cannot read is a 400 naming it (a cursor is the only key
    a list takes from the client)."""
    try:
        yield
    except InvalidKeyError:
        raise InvalidInputError("cursor: not a cursor this list gave") from None
