"""Progress of a long job: the callback the domain reports through, and the one line a command
shows for it on a terminal (nothing when its output goes to a file, a pipe or a log)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

Progress = Callable[[int, int], None]  # (done, total)


class ProgressLine:
    """A ``Progress`` that rewrites one line of ``stream`` (stderr by default), e.g.
    ``250/10000 products (2%)``, at most once per percent, and ends it on leaving its ``with``.
    Silent unless the stream is a terminal."""

    def __init__(self, unit: str, stream: TextIO | None = None) -> None:
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.shown = self.stream.isatty()
        self._percent = -1
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // total if total else 100
        if not self.shown or percent == self._percent:
            return
        self._percent = percent
        self._drawn = True
        print(f"\r{done}/{total} {self.unit} ({percent}%)", end="", file=self.stream, flush=True)

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._drawn:  # what is printed next starts on a line of its own
            print(file=self.stream, flush=True)
