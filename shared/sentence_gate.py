"""A reply streams to the customer as the model writes it, except what may state money.

Plain words go out as soon as they are complete. From the first word of a sentence that may be
part of an amount, a discount or a free offer ("12", "FCFA", "mille", "promo"...), the rest of
the sentence is held until the sentence is complete and the price guard passed it. A sentence
that fails holds everything after it: the guard's end-of-turn verdict decides (a ``Replace``, or
the held text released). So no unchecked amount ever reaches the screen, however the model cuts
its deltas ("12", " 0", "00 FC", "FA").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from shared.price_guard import SENTENCE_END, PriceFacts, word_kind

_WORD = re.compile(r"(\S+)(\s*)")  # a word is complete once a space follows it


class SentenceGate:
    def __init__(self, facts: Callable[[], PriceFacts]) -> None:
        self._facts = facts  # read at each check: the turn's tools may add products
        self._text = ""
        self._sent = 0  # how much of the text went out
        self._cleared = 0  # how much of it may go out
        self._sentence = 0  # where the sentence being written starts
        self._holding = False  # the sentence being written may state money
        self._blocked = False  # a sentence failed its check

    def feed(self, delta: str) -> str:
        """Take what the model wrote; return what may be shown now."""
        self._text += delta
        while not self._blocked:
            end = SENTENCE_END.search(self._text, self._sentence)
            if end is None:
                break
            if self._facts().problems(self._text[self._sentence : end.start()]):
                self._blocked = True
            else:
                self._sentence = self._cleared = end.end()
                self._holding = False
        if not (self._blocked or self._holding):
            self._cleared += self._plain_prefix(self._text[self._cleared :])
        return self._take(self._cleared)

    def rest(self) -> str:
        """What was held back, once the whole reply passed the guard."""
        return self._take(len(self._text))

    def _take(self, end: int) -> str:
        start, self._sent = self._sent, max(self._sent, end)
        return self._text[start:end]

    def _plain_prefix(self, tail: str) -> int:
        """How much of the unfinished sentence's unsent ``tail`` is complete words that cannot
        state money: a number in words counts as plain once a plain word follows ("une paire")."""
        codes = self._facts().codes
        words = [
            (match.end(), word_kind(match[1], codes))
            for match in _WORD.finditer(tail)
            if match[2]  # the last word may still grow: "1" -> "12", "gra" -> "gratuit"
        ]
        plain = len(tail) - len(tail.lstrip())
        i = 0
        while i < len(words):
            end, kind = words[i]
            if kind == "money":
                self._holding = True
                break
            if kind == "number":
                j = i
                while j < len(words) and words[j][1] in ("number", "connector"):
                    j += 1
                if j == len(words) or words[j][1] == "money":
                    self._holding = j < len(words)
                    break
                end = words[j - 1][0]
                i = j
            else:
                i += 1
            plain = end
        return plain
