"""A bilingual French-English commerce glossary, for searching a catalogue written in one language
with words of the other ("robe" for "dress", "lunettes de soleil" for "sunglasses").

The pairs are data (``glossary.tsv``, next to this module). Each side is a phrase of one or more
words, kept as the index's search words (folded, stopwords out, lightly stemmed), and every pair
works both ways. Reading the file is left to the first search that needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

GLOSSARY_PATH = Path(__file__).with_name("glossary.tsv")

Phrase = tuple[str, ...]


class Glossary:
    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        words: Callable[[str], list[str]],
        synonyms: Sequence[tuple[str, str]] = (),
    ) -> None:
        """``pairs`` of (French, English) phrases, ``synonyms`` pairs of phrases of one language
        that mean the same ("paie", "paiement"), ``words`` the index's tokenizer."""
        self._translations: dict[Phrase, list[Phrase]] = {}
        self._synonyms: dict[Phrase, list[Phrase]] = {}
        for table, listed in ((self._translations, pairs), (self._synonyms, synonyms)):
            for first, second in listed:
                one, other = tuple(words(first)), tuple(words(second))
                # A phrase made only of stopwords cannot be searched; the same words need no
                # translation ("satin", "mascara").
                if one and other and one != other:
                    _add(table, one, other)
                    _add(table, other, one)
        # The longest phrase starting with each word: most words start none, and cost one probe.
        self._longest_from: dict[str, int] = {}
        for phrase in [*self._translations, *self._synonyms]:
            self._longest_from[phrase[0]] = max(len(phrase), self._longest_from.get(phrase[0], 0))

    @classmethod
    def from_tsv(cls, text: str, words: Callable[[str], list[str]]) -> Glossary:
        """One ``french<TAB>english`` pair a line, "|" between synonyms, "#" for comments."""
        pairs: list[tuple[str, str]] = []
        synonyms: list[tuple[str, str]] = []
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            french, english = (side.split("|") for side in line.split("\t"))
            pairs.extend((one, other) for one in french for other in english)
            synonyms.extend((side[0], other) for side in (french, english) for other in side[1:])
        return cls(pairs, words, synonyms)

    def translations(self, phrase: Phrase) -> list[Phrase]:
        """The phrase's translations, the most usual first; none for an unknown phrase."""
        return self._translations.get(phrase, [])

    def synonyms(self, phrase: Phrase) -> list[Phrase]:
        """The phrases of the same language listed as meaning the same."""
        return self._synonyms.get(phrase, [])

    def phrases(
        self, words: Sequence[str], usable: Callable[[Phrase], bool]
    ) -> Iterator[tuple[Phrase, list[Phrase], list[Phrase]]]:
        """The glossary phrases in ``words`` with a ``usable`` synonym or translation, left to
        right, the longest at each position, and those synonyms and translations: the words of
        "lunettes de soleil" are one phrase ("sunglasses"), not "glasses" and "sun", unless no
        "sunglasses" is usable."""
        start = 0
        while start < len(words):
            longest = min(self._longest_from.get(words[start], 0), len(words) - start)
            for length in range(longest, 0, -1):
                phrase = tuple(words[start : start + length])
                same = [t for t in self._synonyms.get(phrase, ()) if usable(t)]
                other = [t for t in self._translations.get(phrase, ()) if usable(t)]
                if same or other:
                    yield phrase, same, other
                    start += length
                    break
            else:
                start += 1


def _add(table: dict[Phrase, list[Phrase]], phrase: Phrase, meaning: Phrase) -> None:
    known = table.setdefault(phrase, [])
    if meaning not in known:
        known.append(meaning)


def load_glossary(words: Callable[[str], list[str]], path: Path = GLOSSARY_PATH) -> Glossary:
    return Glossary.from_tsv(path.read_text(encoding="utf-8"), words)
