"""JSON from outside (request bodies, webhook payloads), parsed with limits.

``json.loads`` alone accepts two things that fail later, far from the edge: nesting deep enough to
reach the interpreter's recursion limit (whether it does depends on how deep the caller's stack
already is), and ``\\ud800``-style escapes that leave an unpaired surrogate in a ``str``, which no
UTF-8 encoder (store, log, HTTP response) accepts. ``loads`` refuses both with an
InvalidInputError whose message is safe to show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from shared.exceptions import InvalidInputError

MAX_DEPTH = 32  # every payload this project reads nests a few levels at most

# A string literal, to its closing quote or to the end (possessive: linear on unterminated ones).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# After parsing, a surrogate code point is always unpaired: json joins a valid pair into one.
_SURROGATE = re.compile("[\ud800-\udfff]")


def loads(
    data: bytes | str,
    *,
    max_depth: int = MAX_DEPTH,
    parse_float: Callable[[str], Any] | None = None,
) -> Any:
    """``data`` parsed as UTF-8 JSON; InvalidInputError if it is not valid JSON, nests deeper
    than ``max_depth`` arrays or objects, or holds an unpaired surrogate."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    if _nests_deeper(text, max_depth):
        raise InvalidInputError(f"the JSON is nested too deeply (over {max_depth} levels)")
    try:
        value = json.loads(text, parse_float=parse_float)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError):
        raise InvalidInputError("invalid JSON") from None
    if (surrogate := _lone_surrogate(value)) is not None:
        raise InvalidInputError(
            f"the JSON has a lone surrogate escape (\\u{ord(surrogate):04x}), half of a character"
        )
    return value


def _nests_deeper(text: str, max_depth: int) -> bool:
    """Whether arrays and objects in ``text`` nest deeper than ``max_depth`` (brackets inside
    strings do not count); linear and recursion-free, so it runs before the parser."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if len(brackets) <= max_depth:  # the usual body: too few brackets to be deep
        return False
    return max(accumulate(1 if b in "[{" else -1 for b in brackets)) > max_depth


def _lone_surrogate(value: Any) -> str | None:
    pending = [value]
    while pending:  # iterative: the depth is already bounded, but no recursion is needed
        item = pending.pop()
        if isinstance(item, str):
            if found := _SURROGATE.search(item):
                return found[0]
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None
