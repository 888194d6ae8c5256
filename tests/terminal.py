"""``on_a_terminal()``: stderr replaced by a stream that says it is a terminal, as an operator's
shell is, so a command's progress line can be read back. Entered in the test's body: pytest's
capture puts its own (non-terminal) stderr back between a fixture's setup and the test."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextmanager
def on_a_terminal() -> Iterator[Terminal]:
    stream = Terminal()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stderr", stream)
        yield stream
