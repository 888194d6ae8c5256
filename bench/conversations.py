"""The public conversation set (tests/conversations/): per category, the share of lead fields
exact, replies in the right language, FAQ answered right, products found, handoffs right and
reply checks passed, with the offline responder and through the OpenAI-protocol stub.

    .venv/bin/python bench/conversations.py [--mode offline|openai|both] [--verbose]
                                            [--write-floors]

``--verbose`` lists each failed check with the dialogue, the message and the reply.
``tests/test_conversation_set.py`` runs the same set and fails when a rate falls below its floor
(``tests/conversations/floors.json``); ``--write-floors`` raises the floors to the rates just
measured (never lowers them).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import _common  # noqa: F401 - puts the checkout on sys.path

from tests.conversations import FLOORS, load_floors
from tests.conversations.runner import (
    Mode,
    floors_from,
    format_failures,
    format_table,
    run_set,
    scores,
)
from tests.fixtures.graph_server import VERSION, GraphServer, _graph_handler
from tests.fixtures.openai_server import OpenAIServer, _handler
from tests.llm.script import Script
from tests.loopback import serving

TITLES = {
    "offline": "Offline responder (no key), web and WhatsApp",
    "openai": "Tool-calling path: LLM_PROVIDER=openai against the OpenAI-protocol stub",
}


@contextmanager
def loopback_servers() -> Iterator[tuple[GraphServer, OpenAIServer]]:
    """The loopback Graph API (WhatsApp replies) and OpenAI server the tests use."""
    graph = GraphServer()
    script = Script()
    with (
        serving(_graph_handler(graph), "graph-server") as graph_http,
        serving(_handler(script), "openai-server") as openai_http,
    ):
        graph.base_url = f"{graph_http.root}/{VERSION}"
        yield graph, OpenAIServer(f"{openai_http.root}/v1", script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["offline", "openai", "both"], default="both")
    parser.add_argument("--verbose", action="store_true", help="list every failed check")
    parser.add_argument(
        "--write-floors", action="store_true", help="raise the test's floors to these rates"
    )
    args = parser.parse_args()
    floors = load_floors() if FLOORS.exists() else {}
    modes: list[Mode] = ["offline", "openai"] if args.mode == "both" else [args.mode]
    with loopback_servers() as (graph, openai):
        for mode in modes:
            started = time.perf_counter()
            outcomes = run_set(mode, graph, openai)
            table = scores(outcomes)
            raised = floors_from(table)
            for group, row in floors.get(mode, {}).items():
                for metric, floor in row.items():
                    raised.setdefault(group, {})[metric] = max(floor, raised[group].get(metric, 0))
            floors[mode] = raised
            elapsed = time.perf_counter() - started
            turns = sum(len(o.dialogue.turns) for o in outcomes)
            title = f"{TITLES[mode]}: {len(outcomes)} dialogues, {turns} turns, {elapsed:.1f} s"
            print(format_table(table, title))
            if args.verbose:
                print("\nFailed checks:\n" + (format_failures(outcomes) or "none"))
            print()
    if args.write_floors:
        FLOORS.write_text(json.dumps(floors, indent=2) + "\n", encoding="utf-8")
        print(f"floors written to {FLOORS}")


if __name__ == "__main__":
    main()
