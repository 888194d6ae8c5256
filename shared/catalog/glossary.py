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
    def __init__(self, pairs: Sequence[tuple[str, str]], words: Callable[[str], list[str]]) -> None:
        """``pairs`` of (French, English) phrases, ``words`` the index's tokenizer."""
        self._translations: dict[Phrase, list[Phrase]] = {}
        for french, english in pairs:
            one, other = tuple(words(french)), tuple(words(english))
            # A phrase made only of stopwords cannot be searched; the same words need no
            # translation ("satin", "mascara").
            if one and other and one != other:
                self._add(one, other)
                self._add(other, one)
        # The longest phrase starting with each word: most words start none, and cost one probe.
        self._longest_from: dict[str, int] = {}
        for phrase in self._translations:
            self._longest_from[phrase[0]] = max(len(phrase), self._longest_from.get(phrase[0], 0))

    @classmethod
    def from_tsv(cls, text: str, words: Callable[[str], list[str]]) -> Glossary:
        """One ``french<TAB>english`` pair a line, "|" between synonyms, "#" for comments."""
        pairs: list[tuple[str, str]] = []
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            french, english = line.split("\t")
            pairs.extend(
                (one, other) for one in french.split("|") for other in english.split("|")
            )
        return cls(pairs, words)

    def _add(self, phrase: Phrase, translation: Phrase) -> None:
        known = self._translations.setdefault(phrase, [])
        if translation not in known:
            known.append(translation)

    def translations(self, phrase: Phrase) -> list[Phrase]:
        """The phrase's translations, the most usual first; none for an unknown phrase."""
        return self._translations.get(phrase, [])

    def phrases(
        self, words: Sequence[str], usable: Callable[[Phrase], bool]
    ) -> Iterator[tuple[Phrase, list[Phrase]]]:
        """The glossary phrases in ``words`` with a ``usable`` translation, left to right, the
        longest at each position, and those translations: the words of "lunettes de soleil" are
        one phrase ("sunglasses"), not "glasses" and "sun", unless no "sunglasses" is usable."""
        start = 0
        while start < len(words):
            longest = min(self._longest_from.get(words[start], 0), len(words) - start)
            for length in range(longest, 0, -1):
                phrase = tuple(words[start : start + length])
                found = [t for t in self._translations.get(phrase, ()) if usable(t)]
                if found:
                    yield phrase, found
                    start += length
                    break
            else:
                start += 1


def load_glossary(words: Callable[[str], list[str]], path: Path = GLOSSARY_PATH) -> Glossary:
    return Glossary.from_tsv(path.read_text(encoding="utf-8"), words)
