"""The public conversation set (tests/conversations/) through the real functions: with the
offline responder (web and WhatsApp), then through the OpenAI-protocol stub (the tool-calling
path). The measured rates may not drop below the floors of tests/conversations/floors.json;
raise the floors as the assistant improves (`bench/conversations.py --write-floors`). Every
check counts: no dialogue is excused, the scores are the measure."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conversations import load_floors, load_set
from tests.conversations.runner import (
    Mode,
    below_floors,
    format_failures,
    format_table,
    run_set,
    scores,
)
from tests.fixtures.graph_server import GraphServer
from tests.fixtures.openai_server import OpenAIServer


def test_the_set_holds_sixty_dialogues_in_french_and_english_across_two_shops() -> None:
    dialogues = load_set()
    assert len(dialogues) >= 60
    languages = Counter(d.lang for d in dialogues)
    assert languages.keys() == {"fr", "en"} and min(languages.values()) >= 20
    assert {d.shop for d in dialogues} == {"demo", "glow"}
    assert {d.channel for d in dialogues} == {"web", "whatsapp"}


@pytest.mark.parametrize("mode", ["offline", "openai"])
def test_the_conversation_set_does_not_fall_below_its_floors(
    mode: Mode, graph_server: GraphServer, openai_server: OpenAIServer
) -> None:
    outcomes = run_set(mode, graph_server, openai_server if mode == "openai" else None)
    table = scores(outcomes)
    print(format_table(table, f"{mode}: {len(outcomes)} dialogues"))
    print(format_failures(outcomes))
    below = below_floors(table, load_floors()[mode])
    assert not below, "\n".join(below)
